"""Qt-free engine: MNIST data, CNN models, training, weights files, preprocessing and prediction."""
