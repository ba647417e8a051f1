"""Read the digits and numbers in your own pictures: python test_model.py --help.

The code is in mnist_cnn/commands/read.py, which the console command runs too.
"""

from mnist_cnn.commands.read import run

if __name__ == "__main__":
    run()
