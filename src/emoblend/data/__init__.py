"""The research data path: FER2013 loading, augmentation, blendshape extraction, figures."""
