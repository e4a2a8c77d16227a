"""experiments/regression"""
