"""remap-tb: human-in-the-loop neural architecture search as a TensorBoard plugin."""

from setuptools import find_packages, setup

setup(
    name="remap-tb",
    version="0.1.0",
    description="REMAP-style human-in-the-loop neural architecture search as a TensorBoard plugin",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["remap_tb", "remap_tb.*", "trainer", "trainer.*"]),
    package_data={"remap_tb": ["static/*", "http_api.md"]},
    install_requires=[
        "tensorboard>=2.21",
        "protobuf>=6.31.1",
        "numpy>=2",
        "scikit-learn>=1.5",
        "POT>=0.9",
        "Werkzeug>=3",
        "tqdm",
        "torch>=2.9",
        "torchvision>=0.24",
    ],
    extras_require={"ray": ["ray>=2.40"]},
    entry_points={
        "tensorboard_plugins": ["remap = remap_tb.loader:RemapLoader"],
        "console_scripts": ["remap = trainer.cli:main"],
    },
)
