"""``python -m pxcodec`` runs the ``pxc`` command line."""
from .cli import main

main()
