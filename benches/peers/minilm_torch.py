"""The PyTorch side of benches/encoder.rs: Hugging Face's BertModel with all-MiniLM-L6-v2's
shapes (random weights; eval mode, no dropout), batch 32 x 128 tokens, f32 on the CPU with
the same thread count. Prints the median of forward (under torch.inference_mode) and of
forward + backward (loss = mean of squares of the last hidden state), in the bench's units.

    python benches/peers/minilm_torch.py [threads]     # needs torch and transformers
"""
import statistics, sys, time
import torch
from transformers import BertConfig, BertModel

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
model = BertModel(cfg, add_pooling_layer=False).eval()
ids = (1000 + (torch.arange(32)[:, None] * 7919 + torch.arange(128)[None, :] * 104729) % 28000).long()
mask = torch.ones_like(ids)

def forward():
    with torch.inference_mode():
        return model(input_ids=ids, attention_mask=mask).last_hidden_state

def forward_backward():
    model.zero_grad(set_to_none=True)
    h = model(input_ids=ids, attention_mask=mask).last_hidden_state
    h.square().mean().backward()

def median(f, n):
    f()
    times = []
    for _ in range(n):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    return statistics.median(times)

fwd, both = median(forward, 10), median(forward_backward, 6)
tokens = 32 * 128
print(f"torch {torch.__version__}, {threads} threads, attention {model.config._attn_implementation}")
print(f"forward {fwd * 1e3:.0f} ms = {tokens / fwd:.0f} tokens/s; forward+backward {both * 1e3:.0f} ms = {tokens / both:.0f} tokens/s")
