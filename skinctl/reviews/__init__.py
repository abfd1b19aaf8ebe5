"""Review sentiment: training data from stars, the text model, scoring, per-product summaries."""
