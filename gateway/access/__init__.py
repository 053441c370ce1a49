"""The access pipeline every protected request passes: authenticate → gate →
scope → consent → audit the decision. Above the keys, below the features."""
