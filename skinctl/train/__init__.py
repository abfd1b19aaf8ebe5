"""Training from the database.

A run, in order: choices and options (choices, options), selection and group-aware splits
(dataset), the tf.data input (pipeline), models (architectures), fitting (fitting), test
figures with majority rates and confidence intervals (evaluate, metrics), the saved model and
its checksum (save), the rows written as the run goes (recorder); `runner` runs those steps.
Reading recorded runs back (records), predict and score (predict).

Only this package imports TensorFlow, and only inside the functions that train or predict.
"""
