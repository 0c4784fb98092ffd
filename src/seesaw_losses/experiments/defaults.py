"""The defaults every entry point shares: the built-in trainers' dataclass defaults, ``seesaw compare``'s options
and their help text read these, so each default has one place. Plain numbers: importing this imports nothing."""

EPOCHS = 20
LR = 3e-3  #: AdamW learning rate
DEPTH = 3  #: U-Net levels: sides must be multiples of ``2 ** DEPTH``
#: Per mode (whole resized images, patches at native resolution, class folders): what differs between them.
BATCH_SIZE = {"segmentation": 8, "patches": 16, "classification": 64}
WIDTH = {"segmentation": 16, "patches": 16, "classification": 32}
IMAGE_SIZE = {"segmentation": 128, "classification": 32}
PATCH_SIZE = 128
PATCHES_PER_IMAGE = 8
OVERLAP = 0.5
