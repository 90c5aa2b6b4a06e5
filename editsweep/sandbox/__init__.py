"""editsweep.sandbox"""
