"""Block-wise target log-probabilities equal ``log_softmax`` of the whole logits: random projections with and
without bias, vocabularies that do not fill the last block, targets on block edges, many row blocks, -inf logits,
reduced precision; and MLM heads split into transform + projection score as the full forward does."""
import numpy as np
import pytest
import torch
import transformers

from biasboard.harness.models import last_layer, scoring, vocab


def _reference(features, weight, bias, targets):
    logits = torch.nn.functional.linear(features, weight, bias).float()
    return torch.log_softmax(logits, dim=-1).gather(1, targets.unsqueeze(1)).squeeze(1)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(vocab, "ROW_BLOCK", 7)
    monkeypatch.setattr(vocab, "VOCAB_BLOCK", 16)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("n_vocab", [16, 50, 129])
def test_blocks_equal_log_softmax(small_blocks, with_bias, n_vocab):
    torch.manual_seed(0)
    features, weight = torch.randn(23, 8), torch.randn(n_vocab, 8)
    bias = torch.randn(n_vocab) if with_bias else None
    edges = [e for e in (0, 15, 16, 17, n_vocab - 1) if e < n_vocab]
    targets = torch.tensor([edges[i % len(edges)] if i % 2 else (i * 7) % n_vocab for i in range(23)])
    got = vocab.target_logprobs(features, weight, bias, targets)
    torch.testing.assert_close(got, _reference(features, weight, bias, targets), atol=1e-5, rtol=0)
    assert got.dtype == torch.float32


def test_default_blocks_on_a_real_sized_vocabulary():
    torch.manual_seed(1)
    features, weight, bias = torch.randn(600, 32), torch.randn(30522, 32) * 0.3, torch.randn(30522)
    targets = torch.randint(0, 30522, (600,))
    torch.testing.assert_close(vocab.target_logprobs(features, weight, bias, targets),
                               _reference(features, weight, bias, targets), atol=2e-5, rtol=0)


def test_a_block_of_minus_infinity_adds_nothing(small_blocks):
    weight = torch.randn(40, 4)
    bias = torch.zeros(40)
    bias[16:32] = float("-inf")  # a whole block no token can take
    features, targets = torch.randn(3, 4), torch.tensor([0, 5, 39])
    got = vocab.target_logprobs(features, weight, bias, targets)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, _reference(features, weight, bias, targets), atol=1e-5, rtol=0)


def test_bfloat16_products_match_a_bfloat16_linear(small_blocks):
    torch.manual_seed(2)
    features, weight = torch.randn(9, 8).bfloat16(), torch.randn(50, 8).bfloat16()
    targets = torch.randint(0, 50, (9,))
    torch.testing.assert_close(vocab.target_logprobs(features, weight, None, targets),
                               _reference(features, weight, None, targets), atol=1e-5, rtol=0)


def _tiny_mlm(kind: str):
    torch.manual_seed(0)
    common = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    if kind == "bert":
        return transformers.BertForMaskedLM(transformers.BertConfig(**common))
    if kind == "roberta":
        return transformers.RobertaForMaskedLM(transformers.RobertaConfig(pad_token_id=1, **common))
    return transformers.AlbertForMaskedLM(transformers.AlbertConfig(embedding_size=8, **common))


@pytest.mark.parametrize("kind", ["bert", "roberta", "albert"])
def test_split_head_scores_as_the_full_forward(small_blocks, kind):
    model = _tiny_mlm(kind).eval()
    transform, projection = scoring._mlm_split(model)
    hidden = torch.randn(5, 1, 16)
    with torch.inference_mode():
        torch.testing.assert_close(projection(transform(hidden)), scoring._mlm_head(model)(hidden))
    assert model.get_output_embeddings() is projection  # the head got its projection back
    tok = type("Tok", (), {"pad_token_id": 0})()
    handle = type("H", (), {"family": "mlm", "id": "tiny", "model": model, "tokenizer": tok,
                            "precision": "float32"})()
    queries = [([2, 3, 4, 5], [(1, 7)]), ([2, 9, 4], [(2, 40), (0, 16)]), ([2, 3, 4, 5], [(1, 7)]),
               ([6, 6, 6, 6, 6, 6], [(5, 49)])]
    got = scoring.masked_logprobs(handle, queries, batch_size=2)
    for (ids, asked), lp in zip(queries, got, strict=True):
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        want = [torch.log_softmax(logits[p], -1)[t].item() for p, t in asked]
        np.testing.assert_allclose(lp, want, atol=1e-5)


def test_the_projection_comes_back_when_the_head_fails():
    model = _tiny_mlm("bert").eval()
    transform, projection = scoring._mlm_split(model)
    with pytest.raises(RuntimeError):
        transform(torch.randn(2, 1, 3))  # wrong width
    assert model.get_output_embeddings() is projection


def test_heads_that_are_not_split_keep_the_full_forward():
    cfg = transformers.DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32)
    assert scoring._mlm_split(transformers.DistilBertForMaskedLM(cfg)) is None


@pytest.mark.parametrize("kind", ["bert", "roberta"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_last_layer_at_asked_positions_equals_the_full_forward(kind, attn):
    torch.manual_seed(0)
    common = dict(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
                  attn_implementation=attn)
    model = (transformers.BertForMaskedLM(transformers.BertConfig(**common)) if kind == "bert" else
             transformers.RobertaForMaskedLM(transformers.RobertaConfig(pad_token_id=1, **common))).eval()
    assert last_layer.supported(model)
    ids = torch.tensor([[2, 3, 4, 5, 6], [2, 7, 8, 1, 1], [2, 9, 1, 1, 1]])
    mask = (ids != 1).long()
    rows, cols = torch.tensor([0, 0, 1, 2, 1]), torch.tensor([1, 4, 2, 0, 0])
    with torch.inference_mode():
        want = model.base_model(input_ids=ids, attention_mask=mask)[0][rows, cols]
        got = last_layer.hidden_at(model, ids, mask, rows, cols)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert not any(isinstance(m, last_layer._Capture) for m in model.modules())  # the real layer is back


def test_last_layer_shortcut_is_not_taken_for_other_encoders():
    cfg = transformers.AlbertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=32, embedding_size=8)
    assert not last_layer.supported(transformers.AlbertForMaskedLM(cfg))
    bert = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=32, is_decoder=True)
    assert not last_layer.supported(transformers.BertForMaskedLM(bert))


def test_hooked_modules_keep_the_plain_forward():
    model = _tiny_mlm("bert").eval()
    assert last_layer.supported(model) and scoring._mlm_split(model) is not None
    handle = model.base_model.register_forward_hook(lambda *_: None)
    assert not last_layer.supported(model)
    handle.remove()
    handle = model.get_output_embeddings().register_forward_hook(lambda *_: None)
    assert scoring._mlm_split(model) is None
    handle.remove()
