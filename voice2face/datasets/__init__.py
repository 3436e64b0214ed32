"""The data the models learn and are judged from, read from folders the user names (nothing is downloaded).

- `paired`: voices with faces (VoxCeleb, the authors' release, a generic layout), identity-disjoint
  splits, the feature cache and the torch datasets training reads;
- `labelled`: real data of one kind with labels (UTKFace photos, EmoDB, talking pairs, labelled voices);
- `synthetic`: the espeak-ng voices (and DCGAN faces) that `python -m voice2face synthetic-data` writes.
"""
