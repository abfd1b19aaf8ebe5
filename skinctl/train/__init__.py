"""Training from the database: selection and group-aware splits (dataset), the tf.data input
(pipeline), models (architectures), fit/evaluate/record (runner), metrics with majority rates
and confidence intervals (metrics), recorded runs (records), predict and score (predict).

Only this package imports TensorFlow, and only inside the functions that train or predict.
"""
