# %% [markdown] errors-title
# ## 12 - When things go wrong
#
# Your own photos and your own typing go wrong in a few familiar ways: a path that does not exist,
# a file that is not a photo (or is damaged), a photo without a face, a name that is not in the
# database. Each ends in an error of the package's own, a `fr_utils.FaceRecognitionError` (also an
# `OSError` for files, a `ValueError` for values), whose one sentence names the file or the person
# and says what to do. Catch them like any other exception:

# %% errors-example
try:
    fr_utils.img_to_encoding("images/no_such_photo.jpg", model)
except fr_utils.ImageLoadError as err:
    print(err)

try:
    fr_utils.verify("images/val/madonna/madonna_01.jpg", "madona", database, model)
except fr_utils.DatabaseError as err:
    print(err)
