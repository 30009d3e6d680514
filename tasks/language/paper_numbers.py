"""The MoE-X paper's language numbers (docs/moex.md section 9, Table 2), to print beside ours.

Its models are GPT-2 Small/Medium-sized, trained on FineWeb, evaluated on public text sets; ours are
the preset's size on the embedded Debian-packaged corpus, evaluated on its held-out split. Only the
ordering can be compared, never the values.
"""

# Perplexity on OpenWebText / LAMBADA / WikiText-103 / WikiText-2.
DATASETS = ("OpenWebText", "LAMBADA", "WikiText103", "WikiText2")
PAPER_TABLE_2 = {
    "dense": {"source": "GPT-2 Small", "perplexity": (22.83, 32.71, 49.89, 44.36)},
    "dense+sae": {"source": "GPT-2 Small with its SAE spliced in", "perplexity": (31.60, 38.21, 55.33, 49.16)},
    "switch": {"source": "Switch-S", "perplexity": (18.36, 27.63, 45.22, 38.90)},
    "moex": {"source": "MoE-X-S", "perplexity": (19.42, 28.11, 43.80, 42.58)},
}
