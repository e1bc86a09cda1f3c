"""Untrusted bytes in: the ``.keras`` zip, HDF5 files, JSON configs, each bounded.

* :mod:`~weighttie.io.keras_zip`: a ``.keras`` archive's members, by name;
* :mod:`~weighttie.io.file_window`: part of a file as a stream h5py reads in place;
* :mod:`~weighttie.io.hdf5_guard`: HDF5 opened after its global heaps are checked;
* :mod:`~weighttie.io.hdf5_headers`: a plain HDF5 file's tree, read from its headers;
* :mod:`~weighttie.io.config_json`: a model config parsed within limits.

Nothing here imports Keras or a backend.
"""
