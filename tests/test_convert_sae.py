"""A dictionary_learning AutoEncoder or GatedAutoEncoder (Karvonen's SAEs) as a SAELens folder
(bench/convert_sae.py): the converted SAE computes the same features and reconstruction, and what it
cannot convert is one line."""

import pytest
import torch

from bench.convert_sae import main


def _autoencoder_state(d_in=16, d_sae=48, seed=0) -> dict:
    """The state dict dictionary_learning's AutoEncoder saves: encoder (Linear with bias), decoder
    (Linear without), and `bias`, subtracted before encoding and added after decoding."""
    g = torch.Generator().manual_seed(seed)
    return {"bias": torch.randn(d_in, generator=g), "encoder.weight": torch.randn(d_sae, d_in, generator=g),
            "encoder.bias": torch.randn(d_sae, generator=g), "decoder.weight": torch.randn(d_in, d_sae, generator=g)}


def _gated_state(d_in=16, d_sae=48, seed=0) -> dict:
    """The state dict dictionary_learning's GatedAutoEncoder saves: a bias-free encoder shared by the
    gate (gate_bias) and the magnitude (exp(r_mag) scale, mag_bias), a bias-free decoder, decoder_bias."""
    g = torch.Generator().manual_seed(seed)
    return {"decoder_bias": torch.randn(d_in, generator=g), "encoder.weight": torch.randn(d_sae, d_in, generator=g),
            "r_mag": 0.3 * torch.randn(d_sae, generator=g), "gate_bias": torch.randn(d_sae, generator=g),
            "mag_bias": torch.randn(d_sae, generator=g), "decoder.weight": torch.randn(d_in, d_sae, generator=g)}


def test_a_gated_autoencoder_becomes_a_saelens_gated_sae_with_the_same_features(tmp_path):
    from sae_lens import SAE

    state = _gated_state()
    torch.save(state, tmp_path / "ae.pt")
    assert main(["--ae", str(tmp_path / "ae.pt"), "--hook", "blocks.5.hook_resid_post", "--out", str(tmp_path / "sae")]) == 0
    sae = SAE.load_from_disk(str(tmp_path / "sae"))
    assert sae.cfg.architecture() == "gated"
    x = torch.randn(10, 16, generator=torch.Generator().manual_seed(1)) * 3
    # by hand, from the paper's definition: the gate decides which fire, the magnitude path how much
    e = (x - state["decoder_bias"]) @ state["encoder.weight"].T
    gate = e + state["gate_bias"] > 0
    magnitude = torch.relu(state["r_mag"].exp() * e + state["mag_bias"])
    features = gate * magnitude
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), features, atol=1e-5)
        assert torch.allclose(sae.decode(features), features @ state["decoder.weight"].T + state["decoder_bias"],
                              atol=1e-4)
    # not trivial: some latents the gate shuts although their magnitude is positive
    assert (features > 0).any() and (~gate & (magnitude > 0)).any()


def test_the_saelens_sae_computes_the_autoencoders_features_and_reconstruction(tmp_path):
    from sae_lens import SAE

    state = _autoencoder_state()
    torch.save(state, tmp_path / "ae.pt")
    assert main(["--ae", str(tmp_path / "ae.pt"), "--hook", "blocks.5.hook_resid_post", "--out", str(tmp_path / "sae")]) == 0
    sae = SAE.load_from_disk(str(tmp_path / "sae"))
    assert sae.cfg.metadata.hook_name == "blocks.5.hook_resid_post" and sae.cfg.architecture() == "standard"
    x = torch.randn(10, 16, generator=torch.Generator().manual_seed(1)) * 3
    features = torch.relu((x - state["bias"]) @ state["encoder.weight"].T + state["encoder.bias"])  # by hand
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), features, atol=1e-5)
        assert torch.allclose(sae.decode(features), features @ state["decoder.weight"].T + state["bias"], atol=1e-4)
    assert (features > 0).any() and (features == 0).any()  # the case is not trivial


@pytest.mark.parametrize("make, words", [
    (lambda p: torch.save({**_autoencoder_state(), "k": torch.tensor(8), "threshold": torch.tensor(0.5)}, p),
     "top-k and JumpReLU ones are not converted"),
    (lambda p: torch.save({**_gated_state(), "r_mag": torch.zeros(47)}, p), "r_mag is (47,), expected (48,)"),
    (lambda p: torch.save({**_autoencoder_state(), "bias": torch.zeros(15)}, p), "bias is (15,), expected (16,)"),
    (lambda p: p.write_bytes(b"not a checkpoint"), "is not a torch state dict"),
    (lambda p: None, "does not exist"),
], ids=["top-k", "gated-wrong-shape", "wrong-shape", "garbage", "missing"])
def test_what_cannot_be_converted_is_one_line_and_nothing_is_written(tmp_path, capsys, make, words):
    make(tmp_path / "ae.pt")
    assert main(["--ae", str(tmp_path / "ae.pt"), "--hook", "blocks.0.hook_resid_post", "--out", str(tmp_path / "sae")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "sae").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".sae")]
