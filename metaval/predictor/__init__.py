"""The set-encoder value predictor: features, encoders, value model, training.

Modules: ``features`` (element and set features), ``novelty`` (the value API's repeat
policy), ``encoders`` and ``model`` (the Flax NNX value model), ``data`` (labels to
standardised pairs), ``checkpoint`` (orbax checkpoints and ``predictor.json``),
``train`` (``train_and_evaluate``), ``evaluate`` (held-out splits), ``baselines``,
``writers`` (metrics), ``testing`` (toy labels) and ``toy`` (the toy predictor).
``metaval.predictor.train_and_evaluate`` is loaded on first use, so importing the
features does not import the training stack.
"""


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains a predictor and scores it on held-out pairs; see ``train.train_and_evaluate``.

  Args:
    config: a ``predictor`` config.
    workdir: where checkpoints, metrics and ``predictor.json`` go.

  Returns:
    The results dict of ``train.train_and_evaluate``.
  """
  from metaval.predictor.train import train_and_evaluate as _train

  return _train(config, workdir)
