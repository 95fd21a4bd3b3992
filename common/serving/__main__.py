"""`python -m common.serving`: serve the function FUNCTION_TARGET names (serve.py)."""

import sys

from common.serving.serve import main

sys.exit(main())
