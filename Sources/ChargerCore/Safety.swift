// The safety supervisor: evaluated every cycle from the raw inputs and the previous cycle's
// commands, independent of the session logic, and applied last (the arbiter) so that it always wins.

/// Per-gun memory of the supervisor (persistence timers, command history).
public struct GunSafety: Sendable {
    public var latched = FaultSet.empty
    /// Causes seen active in the latest cycle (a reset clears only what is no longer active).
    public var active = FaultSet.empty
    public var ovTable103Since: Instant? = nil
    public var ovNegotiatedSince: Instant? = nil
    public var ovVehicleSince: Instant? = nil
    public var cc1BadSince: Instant? = nil
    public var overCurrentSince: Instant? = nil
    public var uncommandedSince: Instant? = nil
    /// The highest commanded current in the current and the previous window of `commandLatency`: the
    /// commands that may still be on their way to the modules or in the readings.
    public var commandPeak = Amps.zero, previousCommandPeak = Amps.zero
    /// The same for discharge (V2G): the most negative command of the current and the previous window.
    public var commandTrough = Amps.zero, previousCommandTrough = Amps.zero
    public var commandWindowStart: Instant = .zero
    /// The earliest time by which the latched faults' rows want K1/K2 open (`FaultCode.openWithin`, from
    /// each fault's latch), and the faults already counted into it.
    public var shutdownDeadline: Instant? = nil
    public var shutdownCounted = FaultSet.empty
    /// Previous cycle's K1/K2 command and when it last changed.
    public var k1k2Commanded = false
    public var k1k2ChangedAt: Instant = .zero
    /// Previous cycle's ground-detector self-test command, and when the last command ended.
    public var groundTestCommanded = false
    public var groundTestEndedAt: Instant? = nil
    /// Since when K3/K4 (the car's 12 V auxiliary supply) have been commanded closed, and since when the
    /// supply has been outside its band.
    public var k3k4CommandedSince: Instant? = nil
    public var auxBadSince: Instant? = nil
    public init() {}
}

/// Latched state of the station-wide conditions and the modules.
public struct StationSafety: Sendable {
    public var latched = FaultSet.empty
    public var active = FaultSet.empty
    /// Per module: latched moduleFault / moduleCommLost.
    public var moduleLatched = ModuleArray<FaultSet>(repeating: .empty)
    public var moduleActive = ModuleArray<FaultSet>(repeating: .empty)
    public init() {}
}

extension StationState {
    /// Latches `code` on gun `g` (or the station for station-wide codes) and logs it on its rising edge.
    mutating func raise(_ code: FaultCode, gun g: Int, value: Double, limit: Double = .nan, measure: FaultMeasure? = nil, now: Instant) {
        if code.isStationWide { station.active.insert(code) } else { safety[g].active.insert(code) }
        latch(code, gun: g, value: value, limit: limit, measure: measure, now: now)
    }

    /// Latches `code` on gun `g` (on the station, for a station-wide code) and logs it, once: true when it
    /// was not latched before. The one latch-and-log rule of a raise and of a restore at start.
    @discardableResult
    mutating func latch(_ code: FaultCode, gun g: Int, value: Double, limit: Double = .nan, measure: FaultMeasure? = nil,
                        now: Instant) -> Bool {
        if code.isStationWide {
            guard !station.latched.contains(code) else { return false }
            station.latched.insert(code)
            log.append(code: code, gun: -1, module: -1, at: now, value: value, measure: measure, limit: limit)
        } else {
            guard !safety[g].latched.contains(code) else { return false }
            safety[g].latched.insert(code)
            log.append(code: code, gun: Int8(truncatingIfNeeded: g), module: -1, at: now, value: value, measure: measure, limit: limit)
        }
        return true
    }

    mutating func raiseModule(_ code: FaultCode, module m: Int, value: Double, limit: Double = .nan, now: Instant) {
        station.moduleActive[m].insert(code)
        if !station.moduleLatched[m].contains(code) {
            station.moduleLatched[m].insert(code)
            log.append(code: code, gun: modules[m].assigned, module: Int8(truncatingIfNeeded: m), at: now, value: value, limit: limit)
        }
    }

    /// Latches `code` again at start because it stood when the controller last stopped (the journal says
    /// so): a restart is not a reset ("Faults are latched ... and need an explicit reset"). Logged like a
    /// new latch, marked `restored`; an explicit reset clears it once its cause is gone, as any latch.
    /// `gun` -1 (or any gun, for a station-wide code) latches it on the station. Call before the first cycle.
    /// `value`, `limit` and `measure`: what the journal kept of the record that latched it first (NaN
    /// where it kept none), so that a restart does not lose the reading that tripped it.
    public mutating func restoreLatched(_ code: FaultCode, gun g: Int, at now: Instant, value: Double = .nan,
                                        limit: Double = .nan, measure: FaultMeasure? = nil) {
        guard code.isStationWide || (g >= 0 && g < Capacity.guns) else { return }
        if latch(code, gun: g, value: value, limit: limit, measure: measure, now: now) { log.markNewestRestored() }
    }

    /// Faults in force on gun `g`: its own and the station's.
    @inlinable public func faults(gun g: Int) -> FaultSet { safety[g].latched | station.latched }

    /// Every check of the supervisor, for every gun, station and module. Reads inputs and the
    /// previous cycle's commands; never the session's wishes of this cycle.
    mutating func supervise(_ inputs: inout StationInputs, _ spec: inout StationSpec) {
        let now = inputs.now
        let sinceBoot = now - bootAt
        station.active = .empty
        // Station-wide inputs.
        if inputs.emergencyStop { raise(.emergencyStop, gun: 0, value: 1, now: now) }
        if inputs.doorOpen { raise(.doorOpen, gun: 0, value: 1, now: now) }
        if !inputs.mainsPresent { raise(.mainsLost, gun: 0, value: 0, now: now) }
        if inputs.loopOverrun { raise(.controlLoopOverrun, gun: 0, value: 1, now: now) }
        if inputs.boardIOError { raise(.boardIOFailed, gun: 0, value: 1, now: now) }

        // Modules: health and communication.
        for m in 0..<spec.moduleCount {
            station.moduleActive[m] = .empty
            let mi = inputs.modules[m]
            if mi.faulted { raiseModule(.moduleFault, module: m, value: mi.temperature.value, now: now) }
            if sinceBoot > spec.moduleCommTimeout && now - mi.seenAt > spec.moduleCommTimeout {
                raiseModule(.moduleCommLost, module: m, value: (now - mi.seenAt).seconds, limit: spec.moduleCommTimeout.seconds, now: now)
            }
        }

        // Each gun, check by check (each function below is one group of rows of standards.md).
        for g in 0..<spec.gunCount {
            let gi = inputs.guns[g]
            safety[g].active = .empty
            let energised = safety[g].k1k2Commanded || gi.k1Closed || gi.k2Closed
            protectiveInputs(g, gi, &spec, now: now, energised: energised)
            deviceCommunication(g, gi, &spec, now: now, sinceBoot: sinceBoot)
            overVoltage(g, gi, &spec, now: now, energised: energised)
            overCurrent(g, gi, &spec, now: now, energised: energised)
            duringTheSession(g, gi, &spec, now: now, energised: energised)
            contactorFeedback(g, gi, &spec, now: now)
            auxiliarySupply(g, gi, now: now)
        }
    }

    /// Earth-fault detector, protective earth, gun temperature.
    mutating func protectiveInputs(_ g: Int, _ gi: GunInputs, _ spec: inout StationSpec, now: Instant, energised: Bool) {
        // A detector testing itself trips its own relay: that trip is the test, not a fault, as long
        // as the test was commanded, nothing is energised, and the device says the test is running
        // or has just passed; and for the board's release time after the command ended, the device's
        // relay resetting when its own test ends. A trip that outlasts it is a fault.
        let releasing = !safety[g].groundTestCommanded && safety[g].groundTestEndedAt.map { now - $0 <= spec.guns[g].groundDetectorRelease } ?? false
        let selfTesting = !energised && (releasing || safety[g].groundTestCommanded
            && (gi.groundDetectorTest == .running || gi.groundDetectorTest == .passed))
        if gi.groundFaultTrip && !selfTesting { raise(.groundFault, gun: g, value: 1, now: now) }
        if !gi.peContinuity { raise(.protectiveEarthLost, gun: g, value: 0, now: now) }
        if gi.gunTemperature > spec.guns[g].tripTemperature {
            raise(.gunOverTemperature, gun: g, value: gi.gunTemperature.value, limit: spec.guns[g].tripTemperature.value, now: now)
        }
    }

    /// The meter and the IMD heard within their board-file timeouts.
    mutating func deviceCommunication(_ g: Int, _ gi: GunInputs, _ spec: inout StationSpec, now: Instant, sinceBoot: TimeSpan) {
        // Communication with the meter and the IMD (board-file timeouts).
        if sinceBoot > spec.meterCommTimeout && now - gi.meterSeenAt > spec.meterCommTimeout {
            raise(.meterCommLost, gun: g, value: Swift.min((now - gi.meterSeenAt).seconds, sinceBoot.seconds),
                  limit: spec.meterCommTimeout.seconds, now: now)
        }
        if sinceBoot > spec.imdCommTimeout && now - gi.imdSeenAt > spec.imdCommTimeout {
            raise(.imdCommLost, gun: g, value: Swift.min((now - gi.imdSeenAt).seconds, sinceBoot.seconds),
                  limit: spec.imdCommTimeout.seconds, now: now)
        }
        // The analog values a sampler reads apart from the loop: a stalled one leaves every analog rule
        // (CC1, over-voltage, the welding check, temperature) judging the past.
        if let age = gi.analogAge, age > spec.analogMaxAge {
            raise(.analogStale, gun: g, value: age.seconds, limit: spec.analogMaxAge.seconds, now: now)
        }
    }

    /// Output voltage: IEC 61851-23 Table 103, the car's maximum, the negotiated maximum.
    mutating func overVoltage(_ g: Int, _ gi: GunInputs, _ spec: inout StationSpec, now: Instant, energised: Bool) {
        let gs = spec.guns[g]
        let phase = sessions[g].phase
        // Over-voltage, IEC 61851-23 Table 103: persistent 9 ms → emergency.
        let vOut = max(gi.vehicleSideVoltage, gi.chargerSideVoltage)
        if vOut > Standard.table103Limit(rated: gs.maxVoltage) {
            let since = safety[g].ovTable103Since ?? now
            safety[g].ovTable103Since = since
            if now - since >= Standard.table103Persistence {
                raise(.overVoltageTable103, gun: g, value: vOut.value, limit: Standard.table103Limit(rated: gs.maxVoltage).value, now: now)
            }
        } else { safety[g].ovTable103Since = nil }

        // Above the car's maximum (BHM): stop within 1 s. 10 ms filter against sensor spikes.
        // Only once the battery is on the cable: the IEC cable check deliberately tests at up to
        // 1.1 × the car's maximum with the car's contactors open (standards.md, CC.1).
        let batteryOnCable = phase == .precharge || phase == .charging || phase == .stopping
        if let carMax = sessions[g].carMaxVoltage, energised, batteryOnCable, gi.vehicleSideVoltage > carMax {
            let since = safety[g].ovVehicleSince ?? now
            safety[g].ovVehicleSince = since
            if now - since >= Standard.vehicleMaxOvFilter {
                raise(.overVoltageVehicleMax, gun: g, value: gi.vehicleSideVoltage.value, limit: carMax.value, now: now)
            }
        } else { safety[g].ovVehicleSince = nil }

        // Above the negotiated maximum for more than 400 ms → error shutdown.
        if phase == .charging || phase == .stopping, gi.vehicleSideVoltage > sessions[g].negotiatedMaxVoltage(gs) {
            let since = safety[g].ovNegotiatedSince ?? now
            safety[g].ovNegotiatedSince = since
            if now - since > Standard.negotiatedOvPersistence { raise(.overVoltageNegotiated, gun: g, value: gi.vehicleSideVoltage.value,
                                                                            limit: sessions[g].negotiatedMaxVoltage(gs).value, now: now) }
        } else { safety[g].ovNegotiatedSince = nil }
    }

    /// Current against the gun's rating, and beyond what the modules were commanded.
    mutating func overCurrent(_ g: Int, _ gi: GunInputs, _ spec: inout StationSpec, now: Instant, energised: Bool) {
        let gs = spec.guns[g]
        let phase = sessions[g].phase
        // Over-current against the gun's rating (board overCurrentFactor), after a spike filter; the
        // rating holds in both directions (V2G).
        if gi.meterCurrent.magnitude > gs.maxCurrent * gs.overCurrentFactor {
            let since = safety[g].overCurrentSince ?? now
            safety[g].overCurrentSince = since
            if now - since >= Standard.overCurrentFilter {
                raise(.overCurrent, gun: g, value: gi.meterCurrent.value, limit: (gs.maxCurrent * gs.overCurrentFactor).value, now: now)
            }
        } else { safety[g].overCurrentSince = nil }

        // Current beyond what the modules were commanded: a short, or a module ignoring its setpoint.
        // On closing ("Inrush peak ≤ 20 A": precharge and the first 100 ms of charging) at once;
        // otherwise after 100 ms, which the modules' own lag after a commanded drop never reaches.
        // The command is signed (V2G): the current is judged against the commanded direction, in both
        // (more than commanded into the car, or more than commanded out of it, or a current against
        // the command's direction beyond the margin).
        let ramped = sessions[g].rampedCurrent
        var commanded = phase == .insulationCheck ? Standard.cableCheckCurrentLimit : max(ramped, .zero)
        var commandedOut = min(ramped, .zero)
        // A silent module goes on delivering its last command until it switches itself off: that current
        // is known and out of our hands, not uncommanded. (Without it, a grid setpoint of zero while a
        // module was silent made its 73 A an over-current, E12, and K1/K2 opened under it: found with the
        // V2G tests on sim-60kw, and on main before V2G.)
        var silent = Amps.zero
        for m in 0..<spec.moduleCount where modules[m].assigned == Int8(g) && isUncontrolled(modules[m], now, spec) {
            silent += modules[m].lastCommand
        }
        if phase != .insulationCheck && silent > commanded { commanded = silent }
        if ramped < .zero && -silent < commandedOut { commandedOut = -silent }
        if spec.commandLatency > .zero {
            if now - safety[g].commandWindowStart >= spec.commandLatency {
                safety[g].previousCommandPeak = safety[g].commandPeak
                safety[g].commandPeak = .zero
                safety[g].previousCommandTrough = safety[g].commandTrough
                safety[g].commandTrough = .zero
                safety[g].commandWindowStart = now
            }
            if commanded > safety[g].commandPeak { safety[g].commandPeak = commanded }
            if safety[g].commandPeak > commanded { commanded = safety[g].commandPeak }
            if safety[g].previousCommandPeak > commanded { commanded = safety[g].previousCommandPeak }
            if commandedOut < safety[g].commandTrough { safety[g].commandTrough = commandedOut }
            if safety[g].commandTrough < commandedOut { commandedOut = safety[g].commandTrough }
            if safety[g].previousCommandTrough < commandedOut { commandedOut = safety[g].previousCommandTrough }
        }
        let closing = phase == .precharge || (phase == .charging && now - sessions[g].chargingSince < Standard.closingWindow)
        // Only on a reading of the current now (`readingMaxAge`): a silent meter's last value, taken
        // before a commanded drop, is no current beyond the command (E25 follows at the meter's timeout).
        let meterNow = now - gi.meterSeenAt <= spec.readingMaxAge
        // During the cable check the car's contactors are open and the output is held at 2 A: more than
        // 5 A above that is a short or a runaway module, not an inrush (exploration seed 7481: 20 A
        // through the cable check, then K1/K2 opened under it to go on to the precharge).
        let margin = phase == .insulationCheck ? Standard.openCurrentLimit : Standard.inrushLimit
        let beyond = gi.meterCurrent > commanded + margin || gi.meterCurrent < commandedOut - margin
        if energised && meterNow && beyond {
            if closing {
                raise(.inrushOverCurrent, gun: g, value: gi.meterCurrent.value,
                      limit: (gi.meterCurrent < commandedOut - margin ? commandedOut - margin : commanded + margin).value, now: now)
            } else {
                let since = safety[g].uncommandedSince ?? now
                safety[g].uncommandedSince = since
                if now - since > Standard.uncommandedCurrentPersistence {
                    raise(.overCurrent, gun: g, value: gi.meterCurrent.value,
                          limit: (gi.meterCurrent < commandedOut - margin ? commandedOut - margin : commanded + margin).value, now: now)
                }
            }
        } else { safety[g].uncommandedSince = nil }
    }

    /// While a session runs: insulation monitoring, CC1 in band, the backstop for the car's silence.
    mutating func duringTheSession(_ g: Int, _ gi: GunInputs, _ spec: inout StationSpec, now: Instant, energised: Bool) {
        let phase = sessions[g].phase
        // Continuous insulation monitoring while energised in charging (same fault threshold).
        if phase == .charging || phase == .stopping {
            let ref = max(gi.vehicleSideVoltage, sessions[g].testVoltage)
            if gi.imdAlarm || (ref.value > 0 && gi.insulation / ref <= Standard.insulationFault) {
                raise(.insulationFault, gun: g, value: gi.insulation.value, limit: Standard.insulationFault.value * ref.value, now: now)
            }
        }

        // CC1 must stay in band through the session (3 ms debounce).
        if phase.plugMustStayConnected && (gi.cc1 < Standard.cc1StopBelow || gi.cc1 > Standard.cc1StopAbove) {
            let since = safety[g].cc1BadSince ?? now
            safety[g].cc1BadSince = since
            if now - since >= Standard.cc1FaultDebounce { raise(.cc1OutOfBand, gun: g, value: gi.cc1.value,
                    limit: (gi.cc1 < Standard.cc1StopBelow ? Standard.cc1StopBelow : Standard.cc1StopAbove).value, now: now)
            }
        } else { safety[g].cc1BadSince = nil }

        // Backstop for the car's silence, independent of the session's own 1 s / 5 s handling and
        // reconnection: energised with no BCL for the standard's 10 s bound latches the fault.
        if energised && (phase == .charging || phase == .stopping) {
            let start = sessions[g].chargingSince
            let bclAt = max(gi.vehicle.bcl?.at ?? start, start)
            if start != .never && now - bclAt > Standard.commTimeoutOpenWithin {
                raise(.vehicleCommTimeout, gun: g, value: Double(VehicleMessageKind.bcl.rawValue), now: now)
            }
        }
    }

    /// Contactor feedback against the previous command: failed to close, welded.
    /// The car's 12 V auxiliary supply, where the board measures it: within 12 V ± 0.6 V once K3/K4 have
    /// been closed `Standard.auxSupplySettle`, out of the band `Standard.auxSupplyFaultDebounce` → E33.
    mutating func auxiliarySupply(_ g: Int, _ gi: GunInputs, now: Instant) {
        guard let since = safety[g].k3k4CommandedSince, gi.k3k4Closed, !gi.auxSupply.value.isNaN,
              now - since >= Standard.auxSupplySettle else { safety[g].auxBadSince = nil; return }
        let off = gi.auxSupply.value - Standard.auxSupplyNominal.value
        if abs(off) > Standard.auxSupplyTolerance.value {
            let bad = safety[g].auxBadSince ?? now
            safety[g].auxBadSince = bad
            if now - bad >= Standard.auxSupplyFaultDebounce { raise(.auxSupplyOutOfRange, gun: g, value: gi.auxSupply.value,
                    limit: Standard.auxSupplyNominal.value + (off < 0 ? -1 : 1) * Standard.auxSupplyTolerance.value, now: now)
            }
        } else { safety[g].auxBadSince = nil }
    }

    mutating func contactorFeedback(_ g: Int, _ gi: GunInputs, _ spec: inout StationSpec, now: Instant) {
        // Contactor feedback against the previous command.
        let sinceChange = now - safety[g].k1k2ChangedAt
        if safety[g].k1k2Commanded {
            if sinceChange > spec.contactorCloseTimeout && (!gi.k1Closed || !gi.k2Closed) {
                raise(.contactorFailedToClose, gun: g, value: gi.k1Closed ? 2 : 1, now: now)
            }
        } else if sinceChange > spec.contactorOpenTimeout && (gi.k1Closed || gi.k2Closed) {
            raise(.contactorWelded, gun: g, value: gi.k1Closed ? 1 : 2, now: now)
        }
    }

    /// Explicit reset: clears latched faults whose cause is gone (standards: "reset only by explicit
    /// command and only when the cause is gone").
    mutating func applyResets(_ inputs: inout StationInputs, _ spec: inout StationSpec) {
        var any = false
        for g in 0..<spec.gunCount where inputs.guns[g].resetRequest {
            any = true
            let clear = safety[g].latched.subtracting(safety[g].active)
            clearLogged(clear, gun: Int8(truncatingIfNeeded: g), now: inputs.now)
            safety[g].latched = safety[g].latched & safety[g].active
            if safety[g].latched.isEmpty { safety[g].shutdownDeadline = nil; safety[g].shutdownCounted = .empty }
        }
        guard any else { return }
        let clear = station.latched.subtracting(station.active)
        clearLogged(clear, gun: -1, now: inputs.now)
        station.latched = station.latched & station.active
        for m in 0..<spec.moduleCount {
            let c = station.moduleLatched[m].subtracting(station.moduleActive[m])
            if c.contains(.moduleFault) { log.markCleared(code: .moduleFault, gun: -1, module: Int8(truncatingIfNeeded: m), at: inputs.now) }
            if c.contains(.moduleCommLost) { log.markCleared(code: .moduleCommLost, gun: -1, module: Int8(truncatingIfNeeded: m), at: inputs.now) }
            station.moduleLatched[m] = station.moduleLatched[m] & station.moduleActive[m]
        }
    }

    mutating func clearLogged(_ set: FaultSet, gun: Int8, now: Instant) {
        var b = set.bits
        while b != 0 {
            let i = b.trailingZeroBitCount
            b &= b - 1
            if let code = FaultCode(rawValue: UInt8(i)) { log.markCleared(code: code, gun: gun, module: -1, at: now) }
        }
    }
}
