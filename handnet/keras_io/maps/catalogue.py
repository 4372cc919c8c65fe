"""Every public layer class of Keras 3 (``keras.layers``, 3.15) that handnet does not import,
with its reason, and Keras's aliases. Data only: ``registry`` answers with it

    registry.status("Conv2D")        -> "supported (maps/conv.py)"
    registry.status("Convolution2D") -> "alias of Conv2D (files name Conv2D): supported (…)"
    registry.refusal("Conv3D")       -> "3-D volumes (video, scans): …"   (None if imported)

The importer names the reason when a file uses a refused class (one error for every such
layer); docs/keras.md's table of classes is ``registry.markdown_table()``, and a test checks
both that the table is the one in the docs and that ``registry.keras_classes()`` is what the
installed Keras has.
"""

#: Keras's other names for a class; a file holds the class's own name (Keras writes
#: ``type(layer).__name__``), but an alias is read as its class.
ALIASES = {
    "AvgPool1D": "AveragePooling1D",
    "AvgPool2D": "AveragePooling2D",
    "AvgPool3D": "AveragePooling3D",
    "Convolution1D": "Conv1D",
    "Convolution1DTranspose": "Conv1DTranspose",
    "Convolution2D": "Conv2D",
    "Convolution2DTranspose": "Conv2DTranspose",
    "Convolution3D": "Conv3D",
    "Convolution3DTranspose": "Conv3DTranspose",
    "GlobalAvgPool1D": "GlobalAveragePooling1D",
    "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "GlobalAvgPool3D": "GlobalAveragePooling3D",
    "GlobalMaxPool1D": "GlobalMaxPooling1D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D",
    "GlobalMaxPool3D": "GlobalMaxPooling3D",
    "GroupQueryAttention": "GroupedQueryAttention",
    "MaxPool1D": "MaxPooling1D",
    "MaxPool2D": "MaxPooling2D",
    "MaxPool3D": "MaxPooling3D",
    "SeparableConvolution1D": "SeparableConv1D",
    "SeparableConvolution2D": "SeparableConv2D",
}

CODE = "it holds Python code, and handnet never runs code from a file"
THREE_D = ("3-D volumes (video, scans): not the digit world; handnet's layers stop at 2-D "
           "images")
TEXT = ("text and categories (strings, hashing, vocabularies), not digits: handnet's inputs "
        "are float arrays")
FOREIGN = ("it wraps another framework's code or a saved TensorFlow graph: handnet never runs "
           "code from a file")
GROUPED_ATTENTION = ("grouped-query attention (fewer key and value heads than query heads, "
                     "shared between groups) is not implemented: MultiHeadAttention is")
COLOUR = "colour augmentation: handnet's images are gray digits, one channel"
TRAINING_MIX = ("a training-time augmentation handnet does not implement (it mixes or chains "
                "other images and augmentations)")
PREPROCESS = "an image preprocessing step handnet does not implement"
WARP = "an augmentation handnet does not implement (it warps images in training)"
ADAPTIVE = ("adaptive pooling (windows fitted to each input's size) is not implemented: "
            "handnet pools with fixed windows")
CELL = ("a recurrent cell is one step, not a layer on sequences: handnet imports SimpleRNN, "
        "LSTM and GRU (their cells are inside)")

#: Keras class -> why handnet does not import it.
REFUSED = {
    "AdaptiveAveragePooling1D": ADAPTIVE,
    "AdaptiveAveragePooling2D": ADAPTIVE,
    "AdaptiveAveragePooling3D": THREE_D,
    "AdaptiveMaxPooling1D": ADAPTIVE,
    "AdaptiveMaxPooling2D": ADAPTIVE,
    "AdaptiveMaxPooling3D": THREE_D,
    "AugMix": TRAINING_MIX,
    "AutoContrast": PREPROCESS,
    "AveragePooling3D": THREE_D,
    "CategoryEncoding": TEXT,
    "ContrastLimitedAdaptiveHistogramEqualization": PREPROCESS,
    "Conv1DTranspose": "not implemented: handnet's transposed convolution is Conv2DTranspose",
    "Conv3D": THREE_D,
    "Conv3DTranspose": THREE_D,
    "ConvLSTM1D": "convolutional LSTMs are not implemented (handnet's LSTM is dense)",
    "ConvLSTM2D": "convolutional LSTMs are not implemented (handnet's LSTM is dense)",
    "ConvLSTM3D": THREE_D,
    "Cropping3D": THREE_D,
    "CutMix": TRAINING_MIX,
    "Discretization": TEXT,
    "Equalization": PREPROCESS,
    "FlaxLayer": FOREIGN,
    "GRUCell": CELL,
    "GlobalAveragePooling3D": THREE_D,
    "GlobalMaxPooling3D": THREE_D,
    "GroupedQueryAttention": GROUPED_ATTENTION,
    "HashedCrossing": TEXT,
    "Hashing": TEXT,
    "IntegerLookup": TEXT,
    "JaxLayer": FOREIGN,
    "LSTMCell": CELL,
    "Lambda": CODE,
    "Layer": ("the base class: a subclass of it is a custom layer, whose code is not in the "
              "file, and handnet never runs code from a file"),
    "MaxNumBoundingBoxes": "bounding boxes are object detection, not digit classification",
    "MaxPooling3D": THREE_D,
    "MelSpectrogram": "audio, not the digit world",
    "MixUp": TRAINING_MIX,
    "Pipeline": TRAINING_MIX,
    "RMSNormalization": ("root-mean-square normalization is not implemented (Keras's "
                         "deprecated LayerNormalization(rms_scaling=True), which handnet imports, "
                         "divides by the root of the centred variance instead)"),
    "RNN": ("RNN runs any cell, which may be custom code: handnet imports SimpleRNN, LSTM and "
            "GRU"),
    "RandAugment": TRAINING_MIX,
    "RandomColorDegeneration": COLOUR,
    "RandomColorJitter": COLOUR,
    "RandomElasticTransform": WARP,
    "RandomErasing": WARP.replace("warps", "erases patches of"),
    "RandomGaussianBlur": WARP.replace("warps", "blurs"),
    "RandomGrayscale": COLOUR,
    "RandomHue": COLOUR,
    "RandomInvert": WARP.replace("warps", "inverts"),
    "RandomPerspective": WARP,
    "RandomPosterization": COLOUR,
    "RandomSaturation": COLOUR,
    "RandomSharpness": WARP.replace("warps", "sharpens"),
    "RandomShear": WARP,
    "ReversibleEmbedding": ("an Embedding whose table also maps back to token scores (a "
                            "language model's head): not implemented (Embedding is)"),
    "STFTSpectrogram": "audio, not the digit world",
    "SimpleRNNCell": CELL,
    "Solarization": PREPROCESS,
    "SpatialDropout3D": THREE_D,
    "SpectralNormalization": ("a wrapper that rescales another layer's kernel by power "
                              "iteration: not implemented"),
    "StackedRNNCells": CELL,
    "StringLookup": TEXT,
    "TFSMLayer": FOREIGN,
    "TextVectorization": TEXT,
    "TorchModuleWrapper": FOREIGN,
    "UpSampling3D": THREE_D,
    "Wrapper": ("the base class of wrappers: a subclass is a custom layer, whose code is not in "
                "the file (handnet imports Bidirectional and TimeDistributed)"),
    "ZeroPadding3D": THREE_D,
}

#: Keras classes that are not in keras.layers' catalogue of layers but name code too.
CODE_CLASSES = {"TFOpLambda": CODE, "SlicingOpLambda": CODE}
#: Operations (keras.ops) Keras 3 records as nodes of a functional model.
OPERATIONS = {
    "NotEqual": ("a Keras operation (keras.ops) recorded as a node, here the mask of an "
                 "Embedding(mask_zero=True) in a functional model, passed as mask=…: handnet "
                 "imports layers, not operations (a Sequential model keeps the mask inside)"),
}
#: Classes import reads besides the layer mappings.
MODEL_AND_INPUT = ("InputLayer", "Sequential", "Functional")

#: Class names files hold that keras.layers exports under an alias only.
ALIAS_ONLY = ("GroupedQueryAttention",)

CUSTOM = ("not a Keras layer class: a custom class, whose code is not in the file (handnet "
          "never runs code from a file)")
