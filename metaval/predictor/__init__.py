"""The set-encoder value predictor: features, encoders, value model, training."""
