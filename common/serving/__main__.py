import sys

from common.serving.serve import main

sys.exit(main())
