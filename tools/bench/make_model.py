# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""Write the benchmark's tiny language model: a llama-architecture GGUF file with random weights from a fixed seed.

The model knows nothing; it exists so that a real inference server (llama.cpp, through llama-cpp-python) does the real
work of one: tokenizing, a prompt pass, then one forward pass of matrix-vector products per generated token, streamed
back. Its sizes keep the file a few MB and one token a few milliseconds of one core's work, so that a benchmark round
is short and its cost is CPU, memory and scheduling rather than waiting on a disk.

The tokenizer is copied from one of the vocabulary-only GGUF files in llama.cpp's source tree (the llama-cpp-python
sdist ships them under vendor/llama.cpp/models/; scripts/setup-llama-server extracts ggml-vocab-llama-spm.gguf, the
32000-token SentencePiece vocabulary of Llama 2). A small chat template makes /v1/chat/completions usable.

Generation does not stop at once: the embedding rows of the control tokens (unknown, begin and end of sequence) are
zero, and the output layer shares the embedding matrix, so their logit is exactly 0 while about half of the other
tokens score above it; end of sequence is never among the top-k candidates, nor the greedy choice.

The same arguments and package versions give the same bytes: weights come from numpy's PCG64 generator with a fixed
seed, the quantization is numpy's, and the writer adds no timestamps.

    python tools/bench/make_model.py --vocab ggml-vocab-llama-spm.gguf [--output .build/bench/aitune-tiny-llama.gguf]
"""

import argparse
import os
import sys
import tempfile

import gguf
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUTPUT = os.path.join(REPO, '.build', 'bench', 'aitune-tiny-llama.gguf')
NAME = 'aitune-tiny-llama'
SEED = 20260101
# Hidden size 256 (4 heads of 64), 6 blocks, SwiGLU width 768: with the 32000-token vocabulary 13.3 M parameters,
# 14.9 MB in Q8_0 with the vocabulary, and per token 13.3 M multiply-adds (the output layer over the vocabulary is 8.2 M
# of them), about 1 ms of one AVX2 core.
EMBEDDING = 256
HEADS = 4
KV_HEADS = 4
BLOCKS = 6
FEED_FORWARD = 768
CONTEXT = 2048
RMS_EPS = 1e-5
ROPE_BASE = 10000.0
# Embedding entries' standard deviation: the logits over the vocabulary get a spread of about 0.1 * sqrt(256) = 1.6,
# enough for sampling to prefer some tokens, far from always the same one.
EMBEDDING_STD = 0.1
# Q8_0 keeps the matrices' work real (llama.cpp's int8 dot products) at a quarter of float32's size; norms stay float32,
# as llama.cpp requires.
WEIGHT_TYPE = gguf.GGMLQuantizationType.Q8_0
FILE_TYPE = gguf.LlamaFileType.MOSTLY_Q8_0
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
SILENT_TOKEN_TYPES = (gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL)


def read_tokenizer(path):
    """The ``tokenizer.*`` fields of a GGUF file as ``[(key, value, type, element type)]``, in the file's order."""
    reader = gguf.GGUFReader(path)
    fields = []
    for key, field in reader.fields.items():
        if not key.startswith('tokenizer.'):
            continue
        value_type = gguf.GGUFValueType(field.types[0])
        element_type = gguf.GGUFValueType(field.types[1]) if value_type == gguf.GGUFValueType.ARRAY else None
        fields.append((key, field.contents(), value_type, element_type))
    keys = {key for key, _value, _type, _element in fields}
    for required in (gguf.Keys.Tokenizer.MODEL, gguf.Keys.Tokenizer.LIST, gguf.Keys.Tokenizer.TOKEN_TYPE,
                     gguf.Keys.Tokenizer.EOS_ID):
        if required not in keys:
            raise SystemExit('make_model: %s has no %s: not a vocabulary file' % (path, required))
    if gguf.Keys.Tokenizer.CHAT_TEMPLATE in keys:
        fields = [field for field in fields if field[0] != gguf.Keys.Tokenizer.CHAT_TEMPLATE]
    return fields


def random_matrix(rng, rows, columns, std):
    """A float32 (rows, columns) matrix: ggml's shape {columns, rows}, a layer from ``columns`` inputs to ``rows``."""
    return (rng.standard_normal((rows, columns), dtype=np.float32) * np.float32(std)).astype(np.float32)


def tensors(rng, vocabulary, silent_tokens):
    """(name, float32 array) of every tensor, in llama.cpp's names; the matrices' scale keeps each block's output of
    the same order as its input, so every block shapes the result."""
    embedding = random_matrix(rng, vocabulary, EMBEDDING, EMBEDDING_STD)
    embedding[silent_tokens] = 0.0
    yield 'token_embd.weight', embedding
    yield 'output_norm.weight', np.ones(EMBEDDING, dtype=np.float32)
    head_size = EMBEDDING // HEADS
    for block in range(BLOCKS):
        prefix = 'blk.%d.' % block
        yield prefix + 'attn_norm.weight', np.ones(EMBEDDING, dtype=np.float32)
        yield prefix + 'attn_q.weight', random_matrix(rng, EMBEDDING, EMBEDDING, EMBEDDING ** -0.5)
        yield prefix + 'attn_k.weight', random_matrix(rng, KV_HEADS * head_size, EMBEDDING, EMBEDDING ** -0.5)
        yield prefix + 'attn_v.weight', random_matrix(rng, KV_HEADS * head_size, EMBEDDING, EMBEDDING ** -0.5)
        yield prefix + 'attn_output.weight', random_matrix(rng, EMBEDDING, EMBEDDING, EMBEDDING ** -0.5)
        yield prefix + 'ffn_norm.weight', np.ones(EMBEDDING, dtype=np.float32)
        yield prefix + 'ffn_gate.weight', random_matrix(rng, FEED_FORWARD, EMBEDDING, EMBEDDING ** -0.5)
        yield prefix + 'ffn_up.weight', random_matrix(rng, FEED_FORWARD, EMBEDDING, EMBEDDING ** -0.5)
        yield prefix + 'ffn_down.weight', random_matrix(rng, EMBEDDING, FEED_FORWARD, FEED_FORWARD ** -0.5)


def write_model(vocab_path, output):
    tokenizer = read_tokenizer(vocab_path)
    by_key = {key: value for key, value, _type, _element in tokenizer}
    vocabulary = len(by_key[gguf.Keys.Tokenizer.LIST])
    token_types = by_key[gguf.Keys.Tokenizer.TOKEN_TYPE]
    silent_tokens = [token for token, kind in enumerate(token_types) if kind in SILENT_TOKEN_TYPES]
    # The output layer shares the embedding (llama.cpp uses token_embd when output.weight is absent).
    parameters = vocabulary * EMBEDDING + BLOCKS * (
        2 * EMBEDDING * EMBEDDING + 2 * KV_HEADS * (EMBEDDING // HEADS) * EMBEDDING + 3 * EMBEDDING * FEED_FORWARD)
    norms = (2 * BLOCKS + 1) * EMBEDDING

    writer = gguf.GGUFWriter(None, 'llama')
    writer.add_name(NAME)
    writer.add_description('Random weights (seed %d) for benchmarking an inference server; it knows no language.'
                           % SEED)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(EMBEDDING)
    writer.add_block_count(BLOCKS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_rope_dimension_count(EMBEDDING // HEADS)
    writer.add_rope_freq_base(ROPE_BASE)
    writer.add_vocab_size(vocabulary)
    writer.add_file_type(FILE_TYPE)
    for key, value, value_type, element_type in tokenizer:
        writer.add_key_value(key, value, value_type, sub_type=element_type)
    writer.add_chat_template(CHAT_TEMPLATE)

    rng = np.random.Generator(np.random.PCG64(SEED))
    for name, array in tensors(rng, vocabulary, silent_tokens):
        if array.ndim == 1:
            writer.add_tensor(name, array)
        else:
            writer.add_tensor(name, gguf.quants.quantize(array, WEIGHT_TYPE), raw_dtype=WEIGHT_TYPE)

    # Written beside the output and renamed over it: a reader never sees half a model, an interrupted run leaves none.
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix='.%s.' % os.path.basename(output), dir=directory)
    os.close(handle)
    try:
        writer.write_header_to_file(partial)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(partial, 0o644)
        os.replace(partial, output)
    except BaseException:
        os.unlink(partial)
        raise
    return parameters, norms, vocabulary, silent_tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--vocab', required=True, metavar='GGUF',
                        help="a vocabulary-only GGUF file from llama.cpp's models/ (ggml-vocab-llama-spm.gguf)")
    parser.add_argument('--output', default=DEFAULT_OUTPUT, metavar='GGUF', help='where to write the model')
    args = parser.parse_args()
    parameters, norms, vocabulary, silent_tokens = write_model(args.vocab, args.output)
    size = os.path.getsize(args.output)
    print('make_model: wrote %s: %.1f MB, llama architecture, %d blocks, hidden %d (%d heads, %d KV heads), '
          'feed-forward %d, vocabulary %d from %s (control tokens %s silent), %.2f M parameters in %s '
          '(one multiply-add each per token) and %d norm weights in F32, seed %d'
          % (args.output, size / 1e6, BLOCKS, EMBEDDING, HEADS, KV_HEADS, FEED_FORWARD, vocabulary,
             os.path.basename(args.vocab), silent_tokens, parameters / 1e6, WEIGHT_TYPE.name, norms, SEED))
    return 0


if __name__ == '__main__':
    sys.exit(main())
