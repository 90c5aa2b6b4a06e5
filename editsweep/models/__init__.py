"""editsweep.models"""
