"""Probabilities -> steady readings: face tracking, the stabilizer, the estimator, the frame
loop behind ``emoblend video`` / ``live``, and the demo clip.
"""
