"""editsweep.benchmark"""
