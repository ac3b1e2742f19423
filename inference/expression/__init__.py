"""Stage 2, expression: a perceived `Face` in, the face model's parameters and the emotion out.

Takes a `Face` from perception; `features.encoder_input` builds the encoder's input from it (the
one normalisation shared with training), and `encoder.ExpressionEncoder.predict_face` gives an
`Expression`: expression coefficients, jaw, eyelids and gaze of the encoder's face model, the
emotion's probabilities and its intensity. `emotions` is the one emotion list and its EMFACS
prototypes. The model's contract (sizes, labels, face model) is its metadata JSON.
"""
