"""Entry point of the sweep. Until the sweep exists it runs the sandbox benchmark."""

from editsweep.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "sandbox"]))
