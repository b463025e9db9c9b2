"""Readers and writers: images, masks, vessel graphs and ultrasound ensembles.

Images (:func:`vasomics.io.images.read_image`, :func:`~vasomics.io.images.write_image`,
:func:`~vasomics.io.images.read_mask`); geometry is spacing (mm), origin and direction in
ITK's LPS convention (see :mod:`vasomics.image`):

==========================  ==========  =====  ===========================================
format                      extension   write  geometry kept
==========================  ==========  =====  ===========================================
NIfTI-1/2                   .nii .nii.gz  yes  spacing, origin, direction (sform, else
                                               qform, as ITK; RAS converted to LPS); NaN kept
NRRD                        .nrrd .nhdr   yes  spacing, origin, direction
MetaImage                   .mha .mhd     yes  spacing, origin, direction (.mhd + .raw)
DICOM series                a folder      yes  from ImagePositionPatient /
                                               ImageOrientationPatient / PixelSpacing;
                                               the series with most slices; allow-listed tags
                                               (write: dicom.write_dicom_series)
DICOM single file           .dcm          no   as above; ultrasound regions give spacing
VTK XML ImageData           .vti          yes  spacing, origin, VTK 9 Direction
PNG / JPEG / BMP            .png .jpg     yes  none stored (pixel = 1 unless spacing= given);
                                               8/16-bit grey, RGB(A), 1-bit → bool
TIFF (2D, 3D stacks)        .tif .tiff    yes  ImageJ unit + spacing or cm resolution tags
==========================  ==========  =====  ===========================================

Graphs and centerlines (:mod:`vasomics.io.graphs`): VTP (VMTK / 3D Slicer polylines with a
``Radius`` point array; read and write), GraphML (write), JSON (versioned schema; read and
write). :mod:`vasomics.io.vtk_xml` is the dependency-free VTK XML (.vti/.vtp) codec underneath;
:mod:`vasomics.io.tubetk` maps TubeTK gold-standard centerlines into an image's frame. Every
writer writes atomically (:mod:`vasomics.io.atomic`).
"""
