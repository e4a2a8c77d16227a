"""``biaslab relu``: the threshold a bias sets (:mod:`.run`, :mod:`.claims`)."""
