"""Test fixture: an mmsk encoder plugin whose name (keras_app) collides with mmsk-keras-apps."""
