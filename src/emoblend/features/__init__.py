"""Faces -> model inputs: the feature table's schema and the landmark features.

The same functions build a classifier's input from a FER2013 row offline and from a live
face, so training and the robot's path cannot drift apart.
"""
