import sys

from services.o2ims_api.app import main

sys.exit(main())
