"""Evaluate a trained model on the MNIST test set: python evaluate_model.py --help.

The code is in mnist_cnn/commands/evaluate.py, which the console command runs too.
"""

from mnist_cnn.commands.evaluate import run

if __name__ == "__main__":
    run()
