import sys

from services.focom_api.app import main

sys.exit(main())
