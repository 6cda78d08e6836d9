"""Writes ONNX's backend node test cases (model.onnx + test_data_set_0/{input,output}_K.pb per case)
into a directory, for bench/conformance-sweep.ts:

    /usr/bin/python3 bench/onnx-node-cases.py /tmp/onnx-node

Debian's python3-onnx ships the generator but not the data. Its case modules (onnx 1.12) still use
numpy aliases that numpy 1.24 removed (np.float, np.int, ...); they are restored here before the
cases are collected, then ONNX's own generate-data writes them.
"""
import argparse
import sys
import warnings

import numpy as np

warnings.simplefilter('ignore', FutureWarning)
for alias, builtin in [('float', float), ('int', int), ('bool', bool), ('object', object), ('str', str), ('complex', complex)]:
    if alias not in np.__dict__:
        setattr(np, alias, builtin)

from onnx.backend.test import cmd_tools  # noqa: E402  (after the aliases: the case modules run at import)

parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
parser.add_argument('output', help='directory to write node/<case>/ into')
parser.add_argument('--op-type', default=None, help='only the cases that use this operator')
args = parser.parse_args()
cmd_tools.generate_data(argparse.Namespace(output=args.output, op_type=args.op_type))
print(f'wrote the cases under {args.output}/node', file=sys.stderr)
