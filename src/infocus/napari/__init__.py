"""The napari plugin: dock widgets and sample data, declared in ``napari.yaml`` (npe2).

Install it with ``pip install 'infocus[napari]'``; napari then lists the plugin, whose widgets
are:

* **Denoise (classical)** (:class:`~infocus.napari._denoise.DenoiseWidget`): a classical method
  on the selected layer, its parameters automatic or set by sliders, with a live preview on a
  crop.
* **Train** (:class:`~infocus.napari._train.TrainWidget`): any registered method on layers or
  files, in a worker thread, with a progress bar, a live loss plot and a Cancel button.
* **Denoise with a model** (:class:`~infocus.napari._predict.PredictWidget`): a saved model on
  a layer, tiled, so large images are fine.
* **Quality check** (:class:`~infocus.napari._qc.QualityWidget`): the maps of ``infocus qc``
  (flags, consistency z-scores, objects) as layers.

napari imports the widget modules only when a widget is opened, and nothing in infocus imports
this package, so ``import infocus`` never loads Qt.
"""
