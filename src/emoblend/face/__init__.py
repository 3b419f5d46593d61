"""Frames -> faces: MediaPipe's Face Landmarker, its model file, and the 52 blendshape names.

Everything that touches MediaPipe lives here, so the rest of emoblend sees plain
:class:`~emoblend.face.landmarker.Face` records (blendshapes, landmarks, matrix, box).
"""
