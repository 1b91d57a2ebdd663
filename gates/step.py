"""(being written: the GATE step type)"""
