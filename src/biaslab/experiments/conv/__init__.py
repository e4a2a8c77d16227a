"""experiments/conv"""
