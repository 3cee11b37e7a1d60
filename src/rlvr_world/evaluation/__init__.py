"""Evaluation of world models: predictors, metrics and readable reports."""
