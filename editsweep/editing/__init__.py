"""editsweep.editing"""
