"""Readers and writers: images, masks, vessel graphs and ultrasound ensembles.

Images (:func:`vasomics.io.images.read_image`, :func:`~vasomics.io.images.write_image`,
:func:`~vasomics.io.images.read_mask`); geometry is spacing (mm), origin and direction in
ITK's LPS convention (see :mod:`vasomics.image`):

=================  ============  =====  ==================================================
format             extension     write  geometry and pixel types
=================  ============  =====  ==================================================
NIfTI-1/2          .nii .nii.gz  yes    sform, else qform, else pixdim (as ITK), RAS
                                        converted to LPS; scaling applied; NaN kept
NRRD               .nrrd .nhdr   yes    spacing, origin, direction (SimpleITK)
MetaImage          .mha .mhd     yes    spacing, origin, direction (own strict reader,
                                        SimpleITK writer; .mhd + .raw)
DICOM series       a folder      yes    ImagePositionPatient / ImageOrientationPatient /
                                        PixelSpacing; series with most slices; allow-listed
                                        tags only (write: dicom.write_dicom_series)
DICOM file         .dcm          no     as above; ultrasound regions give the spacing
VTK ImageData      .vti          yes    spacing, origin, VTK 9 Direction (own codec)
PNG, JPEG, BMP     .png .jpg     yes    none stored (1 unless spacing= is given); 8/16-bit
                                        grey, RGB(A) incl. 16-bit PNG, 1-bit → bool
TIFF (2D, 3D)      .tif .tiff    yes    OME PhysicalSize, ImageJ unit and z spacing, or cm
                                        resolution tags
=================  ============  =====  ==================================================

Graphs and centerlines (:mod:`vasomics.io.graphs`): VTP (VMTK / 3D Slicer polylines with a
``Radius`` point array; read and write), GraphML (write), JSON (versioned schema; read and
write). :mod:`vasomics.io.vtk_xml` is the dependency-free VTK XML (.vti/.vtp) codec underneath;
:mod:`vasomics.io.tubetk` maps TubeTK gold-standard centerlines into an image's frame. Every
writer writes atomically (:mod:`vasomics.io.atomic`).
"""

import importlib

#: Public names, importable from ``vasomics.io`` (loaded on first use).
_LAZY = {
    "read_image": "vasomics.io.images", "write_image": "vasomics.io.images",
    "read_mask": "vasomics.io.images", "read_vtp_centerlines": "vasomics.io.graphs",
    "read_graph_vtp": "vasomics.io.graphs", "write_graph_vtp": "vasomics.io.graphs",
    "read_graph_json": "vasomics.io.graphs", "write_graph_json": "vasomics.io.graphs",
    "write_graph_graphml": "vasomics.io.graphs", "write_dicom_series": "vasomics.io.dicom",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vasomics.io' has no attribute {name!r}")
