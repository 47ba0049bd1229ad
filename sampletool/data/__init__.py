"""Data: datasets from folders, stratified splits, the feature cache, augmentation."""
