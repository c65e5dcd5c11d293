# %% [markdown] training-title
# ## 11 - Training with the triplet loss
#
# So far the network has only been *used*. FaceNet's contribution is how it was *trained*: with the
# triplet loss of exercise 1, on triplets chosen **online**, inside each batch (paper, section 3.2).
#
# - A batch holds **P people × K photos** of each (here 5 × 8 = 40 faces), so every face has
#   positives (same person) and negatives (other people) in the same batch.
# - For each anchor-positive pair, FaceNet picks a **semi-hard** negative: further from the anchor
#   than the positive, but still inside the margin, $d(A,P) < d(A,N) < d(A,P) + \alpha$. Easy
#   triplets (already beyond the margin) have zero loss and teach nothing; always taking the very
#   hardest negative can make training collapse early on (every face mapped to the same point).
# - The loss is exercise 1's $\max(d(A,P) - d(A,N) + \alpha,\ 0)$, averaged over the mined
#   triplets. `fr_triplets.batch_semihard_triplet_loss` computes it for a whole batch at once with
#   masks; its tests check that it picks exactly the triplets a brute-force loop over every triplet picks.
#
# Here we **fine-tune the top of the pretrained network** on the 93 *train* photos of the five
# celebrities, and keep the 25 *val* photos to check the result:
#
# - **trained**: the last Inception-ResNet block (`Block8_6`) and the 128-unit `Bottleneck`,
#   1.83 million of the 22.8 million weights;
# - **frozen**: everything below, and every BatchNorm layer, kept in inference mode (a batch of 40
#   faces of 5 people would be a poor estimate of the statistics learned on millions of faces);
# - **augmentation**: each photo is used as it is, mirrored, and as one random zoomed-in sub-crop
#   (80-95 % of its side), randomly mirrored;
# - **Adam**, learning rate 5e-5, 60 steps, seed 0.
#
# Because the frozen part never changes, each of the 279 views goes through it **once**; the
# training steps then run only the last block on the cached 3×3×1792 feature maps.
#
# **The margin.** With FaceNet's $\alpha = 0.2$ there would be nothing to learn: the pretrained
# network already keeps every triplet of the val photos beyond that margin (val triplet loss 0.000).
# We ask for more, $\alpha = 1.0$. The encodings are unit vectors, so squared distances run from 0 to
# 4: $\alpha = 1.0$ asks that another person be further from the anchor, in squared distance, by 1.0
# more than the same person.

# %% training-run
import fr_training

# The crops of the 118 demo photos were made in section 10 (`encoded`); split them by folder.
photo_is_train = np.array([path.parent.parent.name == "train" for path in encoded.paths])
photo_names = np.array([path.parent.name for path in encoded.paths])
train_crops, train_names = encoded.crops[photo_is_train], photo_names[photo_is_train]
val_crops, val_names = encoded.crops[~photo_is_train], photo_names[~photo_is_train]

MARGIN = 1.0
tuned = fr_training.fine_tune(
    model, train_crops, train_names,
    steps=60,                               # train longer: a larger number here
    trainable_blocks=1,                     # Block8_6 and the Bottleneck; 2 adds Block8_5, ...
    identities=5, photos_per_identity=8,    # P x K = 40 faces per batch
    mining="semihard",                      # or "batch_all": every active triplet of the batch
    alpha=MARGIN, learning_rate=5e-5, seed=0,
)  # trains a copy: `model` keeps its pretrained weights
training_history = tuned.history
print(f"{tuned.settings['views']} views of {tuned.settings['photos']} train photos through the frozen trunk; "
      f"{training_history.trained_parameters:,} weights trained")
print(f"triplet loss:    steps 1-5 {training_history.loss[:5].mean():.3f}, "
      f"steps 56-60 {training_history.loss[-5:].mean():.3f}")
print(f"active triplets: steps 1-5 {training_history.fraction_active[:5].mean():.0%}, "
      f"steps 56-60 {training_history.fraction_active[-5:].mean():.0%}")

# %% training-curves
training_steps = np.arange(1, len(training_history.loss) + 1)
fig, (ax_loss, ax_active) = plt.subplots(1, 2, figsize=(11, 3.6))
ax_loss.plot(training_steps, training_history.loss, marker=".", color="tab:blue")
ax_loss.set(xlabel="training step (one batch of 5 people x 8 photos)", ylabel="triplet loss",
            title=f"Semi-hard triplet loss (alpha = {MARGIN})")
ax_active.plot(training_steps, 100 * training_history.fraction_active, marker=".", color="tab:red")
ax_active.set(xlabel="training step", ylabel="% of mined triplets with loss > 0", ylim=(0, 100),
              title="Active triplets")
for ax in (ax_loss, ax_active):
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown] training-curves-explained
# At the first steps about four mined triplets in five violate the margin. As the head learns, each
# person's photos are pulled together and the five people pushed apart: fewer and fewer triplets stay
# inside the margin, and the loss falls towards zero. The curves are jagged because every step draws
# a new batch, and mining picks a new set of triplets from it: the loss is an average over *those*
# triplets, not over a fixed set. To compare two networks fairly, the table below uses a fixed set
# instead: **every** valid triplet of the val photos.
#
# Before and after are measured on the same cached trunk features (the trunk is frozen, so it is the
# same for both networks). For each network the threshold is the one with the best accuracy over all
# pairs of the *train* photos; it is then applied, unchanged, to the val photos and to LFW pairs of
# people that neither network saw in fine-tuning: the first 100 same-person and the first 100
# different-person pairs of the LFW benchmark's `pairs.txt`, when `../shared/lfw` is present.

# %% training-evaluation
LFW_DIR = Path("..") / "shared" / "lfw"

pretrained_head = fr_training.split_facenet(model).head  # shares the pretrained model's weights
train_set = tuned.training_set
train_features = (train_set.original_features, np.array(train_set.names)[train_set.original_labels])
val_features = (fr_training.run_trunk(val_crops, tuned.trunk), val_names)
lfw_pairs = None
if (LFW_DIR / "pairs.txt").is_file():
    lfw_sample = fr_training.lfw_pair_sample(LFW_DIR / "pairs.txt", n_same=100, n_different=100)
    lfw_crops, lfw_index1, lfw_index2, lfw_kept = fr_training.load_pair_crops(lfw_sample, LFW_DIR / "images")
    lfw_trunk = fr_training.run_trunk(lfw_crops, tuned.trunk)
    lfw_pairs = (lfw_trunk[lfw_index1], lfw_trunk[lfw_index2], lfw_sample.is_same[lfw_kept])
    print(f"LFW: {lfw_kept.sum()} pairs with a face found in both photos ({len(lfw_crops)} distinct photos)")
else:
    print(f"LFW not found in {LFW_DIR.resolve()}: only the celebrity photos are measured")

before_after = fr_training.compare_heads({"pretrained": pretrained_head, "fine-tuned": tuned.head},
                                         train_features, val_features, lfw_pairs, alpha=MARGIN,
                                         pairs_name="LFW-200")
before_after.round(3)

# %% [markdown] training-conclusion
# **The five people.** On the val photos, never used for training, the triplet loss at
# $\alpha = 1.0$ falls from 0.023 (10 % of the val triplets inside the margin) to 0.000: what was
# learned on the train photos of these five people carries over to their other photos. AUC and
# accuracy were already at or near 1 and have little room to show it.
#
# **Everybody else.** On the 200 LFW pairs the pretrained network is already nearly perfect; after
# fine-tuning, the AUC stays there and the accuracy at the threshold chosen on the celebrities drops
# from 0.980 to 0.965 — three pairs out of 200, about what 200 pairs can resolve. A larger sample
# shows the direction more clearly. With the same settings on the first 600 same + 600 different
# pairs (folds 1-2, `python fr_training.py --lfw-pairs 600`, about 5 minutes, too slow for this
# notebook), fine-tuning makes the network slightly **worse** on people it was not trained on: AUC
# 0.9890 → 0.9880, best possible accuracy 0.9842 → 0.9825, and accuracy at the celebrity threshold
# 0.9617 → 0.9425, because false accepts nearly double (5.2 % → 9.5 % of different-person pairs).
#
# Why? The head was asked one thing only: to keep *these five* people apart by a margin of 1.0, and
# it does so for them: on the train pairs, different celebrities move apart (mean distance
# 1.44 → 1.53) and the photos of each celebrity closer together (0.87 → 0.72). Every other face goes
# through the same changed head, but nothing asked it to keep *them* apart: on LFW all distances
# shrink a little (different people 1.40 → 1.37 on average, same person 0.68 → 0.64). The order of
# the LFW pairs hardly changes (the AUC), but a threshold placed for the celebrities now lets more
# strangers in. With 1.8 million free weights and 93 photos, the head can meet the margin in ways that
# matter for these five faces only. The pretrained network learned from millions of photos of tens of
# thousands of people; five more people cannot make it more general, only more specialised. That is
# FaceNet's lesson seen from the other side: an embedding that works for faces it has never seen
# comes from **many identities**, in every batch and in the training set.
#
# Fine-tuning the top like this makes sense for a closed set, when the people who matter are the ones
# you train on (the five residents of a house) and the threshold is chosen on their photos. For an
# open set, keep the pretrained encoder, or fine-tune on many identities.
