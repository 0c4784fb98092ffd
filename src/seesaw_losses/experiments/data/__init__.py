"""What a comparison trains on: readers and their checks, splits, and one module per layout: image/mask pairs
resized in memory (:mod:`.pairs`), pairs at native resolution read as patches (:mod:`.patches`), class folders
(:mod:`.class_folders`) and the generated sets of ``seesaw demo`` (:mod:`.generated`). Imports nothing of models,
trainers, evaluation or reporting."""
