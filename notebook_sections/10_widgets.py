# %% [markdown] widgets-title
# ### 10.1 - Move the threshold yourself
#
# A threshold is a trade-off, not a fact. Picture the door: its camera photographs each visitor and
# compares the face with the person they claim to be. We replay that with the photos: each of the
# 113 photos that is not in the database is shown to the door **as each of the 5 enrolled people**.
# A photo of Madonna claiming to be Madonna should open the door (a *same* pair); the same photo
# claiming to be Elton John should not (a *different* pair).
#
# The panels below all read one threshold; moving any slider moves them all.
#
# - **Threshold explorer**: histograms of the two kinds of distances with the threshold line; the
#   counts of true accepts (TA), false accepts (FA), true rejects (TR) and false rejects (FR); the true
#   accept rate TAR = TA / (TA + FR) and false accept rate FAR = FA / (FA + TR); the ROC curve (every
#   threshold at once) with the current one marked. The buttons jump to the *equal error rate*
#   threshold (where FAR = 1 - TAR) or to the largest threshold whose FAR stays under a target.
# - **Distance matrix**: every camera photo against every enrolled person, and the door's decision.
# - **who_is_it gallery**: each photo, its nearest enrolled person and the answer at the threshold.
# - **verify playground**: pick a photo and a claim.
#
# Try the seed's 0.7, then the equal error rate, then a FAR of 0.1%. Which doors open for whom?

# %% widgets-data
import fr_plots
import fr_widgets

# The photos encoded above, minus the five in the database: the "camera photos".
enrolled, camera_photos = fr_plots.enrolment_split(encoded.paths)
assert {name: str(path) for name, path in enrolled.items()} == {n: str(p) for n, p in enrolment_photos.items()}
camera_rows = [encoded.paths.index(path) for path in camera_photos]
camera = fr_plots.camera_distances(database, encoded.encodings[camera_rows],
                                   [path.parent.name for path in camera_photos], camera_photos)
camera_crops = encoded.crops[camera_rows]
door_same, door_different = camera.same_different()
print(f"{len(camera.labels)} camera photos x {len(camera.names)} enrolled people: {len(door_same)} visits "
      f"by the enrolled person and {len(door_different)} by somebody else")

# %% widgets-explorer
explorer = fr_widgets.ThresholdExplorer(door_same, door_different, threshold=DEFAULT_THRESHOLD)
explorer

# %% widgets-heatmap
heatmap = fr_widgets.DistanceHeatmap(camera, DEFAULT_THRESHOLD)
heatmap

# %% widgets-gallery
gallery = fr_widgets.WhoIsItGallery(camera, camera_crops, DEFAULT_THRESHOLD)
gallery

# %% widgets-verify
enrolled_crops = {name: fr_utils.load_faces(path)[0][0] for name, path in enrolment_photos.items()}
playground = fr_widgets.VerifyPlayground(camera, camera_crops, DEFAULT_THRESHOLD, enrolled_crops=enrolled_crops)
threshold_links = fr_widgets.link_thresholds(explorer, heatmap, gallery, playground)
playground

# %% [markdown] widgets-embedding-title
# ### 10.2 - What the encodings look like
#
# Each encoding is a point in 128 dimensions. Principal component analysis (PCA) finds the two
# directions along which the points spread the most and projects every point onto them: a flat
# shadow of the 128-D cloud. Photos of one person gather together, far from the others; the stars
# are the database entries. A shadow loses distances (two points can overlap in 2-D yet be far apart
# in 128-D), so decisions are always made on the full 128-D distance.

# %% widgets-embedding
fr_widgets.EmbeddingMap(encoded.encodings, [path.parent.name for path in encoded.paths], database)

# %% [markdown] widgets-upload-title
# ### 10.3 - Your own photos
#
# Enrol a new person from **one** photo: upload it, check the face that was found (with several
# faces, choose one), type a name and press *Enrol*. Then upload another photo to ask who it is, or
# choose a claim to verify it. The photos stay in this notebook's memory; nothing is written to disk
# unless you press *Save database*, which stores the encodings only, never the photos.
#
# This works on a copy of the database, so the exercises above are not affected.

# %% widgets-upload
my_database = dict(database)
your_photos = fr_widgets.YourPhotos(my_database, model, DEFAULT_THRESHOLD)
your_photos
