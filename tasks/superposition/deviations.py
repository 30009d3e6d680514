"""Where the superposition task departs from its reference (Chaudhari, Nuer and Thorstenson's toy MoE
models, docs/superposition.md), written into every result's provenance. Text only: editing it does not
change a number, so it sits outside the code a resumed `paper` run is checked against
(tasks/superposition/resume.py, COMPUTING)."""

DEVIATIONS = [
    "training loss sums the importance-weighted squared error over features (the form of "
    "docs/superposition.md section 3); the reference's vectorised trainer also averages over features, "
    "a factor n that Adam all but ignores. Reported losses are the reference's form: mean over features and "
    "inputs, on fresh inputs",
    "a feature is monosemantic in an expert only if its norm there is >= min_norm (docs/superposition.md: 'norm "
    "not ~0'); the reference has no norm floor",
    "feature dimensionality of an unrepresented feature is 0 (the reference divides 0 by 0)",
    "specialisation: the other features are sampled at the training density while an expert's "
    "monosemantic features are set to 1; the reference sampled them at density 1.0",
    "routing usage and P(expert | feature present) from eval_samples fresh inputs per model (the reference: "
    "one batch of 1024)",
    "toy counterparts: GELU models use the reference's tied linear expert (no toy GELU analogue), ReLU "
    "models put ReLU on the hidden units; MoE-X's router takes its column statistics over each expert's "
    "hidden units (no encoder bias in the toy)",
    "as in the reference, a top-1 learned router gets no gradient (its renormalised weight is always 1), "
    "so only weight decay moves it",
    "the Switch load-balancing loss is added unscaled to the feature-summed reconstruction loss, so it weighs "
    "n times less against reconstruction than in the reference, whose loss averages over features",
    # Said without the setting's name: a run at the reference's uniform importance names no importance_decay.
    "reported losses are unweighted means; under a decaying importance the reference weights them by it",
    "per-expert feature dimensionality divides by the feature's norm + 1e-5 (as the reference's interference "
    "does); the reference's dimensionality divides by the norm exactly, so a feature alone in its directions "
    "scores slightly above 1 when its norm is near 0 (1.21 at 1e-4)",
]
