"""Train the MNIST CNN: python train_model.py --help.

The code is in mnist_cnn/commands/train.py, which the console command runs too.
"""

from mnist_cnn.commands.train import run

if __name__ == "__main__":
    run()
