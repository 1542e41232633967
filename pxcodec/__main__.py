"""``python -m pxcodec`` runs the ``pxc`` command line."""
from .cli import main

if __name__ == "__main__":
    main(prog_name="pxc")
