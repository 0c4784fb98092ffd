"""The networks the built-in trainers train (the U-Net, the MLP, the classification CNN) and whole-image
inference by sliding window: nothing here reads data or scores it."""
