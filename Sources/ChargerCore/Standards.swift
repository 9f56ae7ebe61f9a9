// Every threshold the controller honours, with its name, unit and source.
// "standards.md" below is docs/standards.md in this repository (each number there with its standard and
// clause); the quoted heading names the section or row, and a quoted rule is that row's requirement.
// Values a board may override live in GunSpec/StationSpec (Spec.swift); these are the fixed ones.

public enum Standard {
    // MARK: Connection confirm — standards.md "Connection confirm (GB/T 18487.1 Annex B)"
    /// Detection point 1, nominal values of each state (GB/T 18487.1 Annex B table), tolerance ±0.8 V.
    public static let cc1Unplugged = Volts(6)
    public static let cc1LatchPressed = Volts(12)
    public static let cc1Connected = Volts(4)
    public static let cc1Tolerance = Volts(0.8)
    /// "outside 0–3.2 V or above 4.8 V → stop" (same row, "Normal band at point 1 while charging").
    public static let cc1StopBelow = Volts(3.2)
    public static let cc1StopAbove = Volts(4.8)
    /// Latch pressed (12 V) and then back at the idle 6 V for this long: the driver put the gun back
    /// without plugging in (design choice; 6 V at point 1 cannot tell "inserted, latch held" apart).
    public static let connectingAbandon = Duration.s(5)
    /// Debounce before CC1 out-of-band is believed: a design choice, well inside the 50 ms budget of
    /// "switch S opens (latch pressed) | current ≤ 5 A within 50 ms" (Fault reactions table).
    public static let cc1FaultDebounce = Duration.ms(3)
    /// Confirmation time of the connected state before locking (design choice: plug bounce).
    public static let cc1ConnectDebounce = Duration.ms(100)
    /// "unlock only when the output is below 60 V" (Connection confirm).
    public static let unlockMaxVoltage = Volts(60)

    // MARK: Insulation check — standards.md "Insulation check before charging"
    /// "Before the check the voltage outside K1/K2 must be < 10 V, else refuse to charge."
    public static let insulationPreCheckMaxVoltage = Volts(10)
    /// "500 V if the car sends no BHM."
    public static let insulationTestVoltageWithoutBHM = Volts(500)
    /// "R > 500 Ω/V normal; 100 < R ≤ 500 Ω/V warning, charging allowed; R ≤ 100 Ω/V fault."
    public static let insulationWarning = OhmsPerVolt(500)
    public static let insulationFault = OhmsPerVolt(100)
    /// "After the check, discharge the output below 60 V within 1 s."
    public static let dischargeTarget = Volts(60)
    public static let dischargeTime = Duration.s(1)
    /// "self-test result within 30 s"
    public static let imdSelfTestTimeout = Duration.s(30)
    /// "the whole cable check under 25 s"
    public static let cableCheckTimeout = Duration.s(25)
    /// "Check times out at 15 s of no answer (EN+ practice)."
    public static let imdNoAnswerTimeout = Duration.s(15)
    /// "During cable check limit current to 2 A."
    public static let cableCheckCurrentLimit = Amps(2)
    /// Hold at test voltage before the IMD reading is trusted (design choice; the IMD's own
    /// asymmetric-fault response is ≤ 1 s per "Typical IMD" in the same section).
    public static let insulationSettleTime = Duration.ms(1500)

    // MARK: Residual current / earth — standards.md "Residual current / earth"
    /// "Self-test the detector before each session where the device supports it." The time allowed for
    /// the device to report is not in the standards we read (unconfirmed): 5 s, a vendor figure
    /// (RDC-DD self-tests take about 100–500 ms).
    public static let groundDetectorSelfTestTimeout = Duration.s(5)

    // MARK: Precharge and contactors — standards.md "Precharge and contactors"
    /// "within ±5 % of the value the car reported (BCP)"
    public static let prechargeBatteryVoltageTolerance = 0.05
    /// "Raise the output to 1–10 V below that voltage, then close K1/K2." Target the middle.
    public static let prechargeOffsetMin = Volts(1)
    public static let prechargeOffsetMax = Volts(10)
    public static let prechargeOffsetTarget = Volts(5)
    /// "Inrush peak ≤ 20 A."
    public static let inrushLimit = Amps(20)
    /// Current more than `inrushLimit` above the command for this long is an over-current (design
    /// choice: 10 module time constants, inside the 100 ms the standards give for shutting down).
    public static let uncommandedCurrentPersistence = Duration.ms(100)
    /// "Precharge times out at 60 s."
    public static let prechargeTimeout = Duration.s(60)
    /// Window after K1/K2 close in which current beyond the command counts as inrush (design choice:
    /// ten module time constants of the fastest module).
    public static let closingWindow = Duration.ms(100)
    /// "Open K1/K2 only with current ≤ 5 A (except emergency)."
    public static let openCurrentLimit = Amps(5)
    /// "Normal stop ramps current down at ≥ 100 A/s."
    public static let minimumStopRamp = AmpsPerSecond(100)
    /// "Current demand changes are followed at ≥ 20 A/s."
    public static let minimumDemandRamp = AmpsPerSecond(20)
    /// Invariant: K1/K2 never close across more than this difference (charger side vs vehicle side).
    /// Derived from "1–10 V below that voltage" (the window's upper edge).
    public static let maxCloseMismatch = Volts(10)

    // MARK: Fault reactions — standards.md "Fault reactions" table
    /// "CC1 broken / point 1 leaves 4 V band | send CST, open K1/K2 within 100 ms (50 ms to ≤ 5 A)"
    public static let cc1CurrentDownWithin = Duration.ms(50)
    public static let cc1OpenWithin = Duration.ms(100)
    /// "other fault preventing charge | CST and K1/K2 open within 100 ms"
    public static let errorShutdownOpenWithin = Duration.ms(100)
    /// "protective earth continuity lost | cut power within 100 ms"
    public static let peLossCutWithin = Duration.ms(100)
    /// "output above car's maximum voltage | stop, open K1–K4 within 1 s"
    public static let vehicleMaxOvOpenWithin = Duration.s(1)
    /// "over-voltage above IEC Table 103 limit for 9 ms"
    public static let table103Persistence = Duration.ms(9)
    /// "output above negotiated maximum > 400 ms | error shutdown within 50 ms"
    public static let negotiatedOvPersistence = Duration.ms(400)
    /// Filters for sensor spikes before an over-voltage against the car's maximum, or an over-current
    /// against the gun's rating, is believed (design choices, far inside the 1 s and "emergency"
    /// budgets of their rows).
    public static let vehicleMaxOvFilter = Duration.ms(10)
    public static let overCurrentFilter = Duration.ms(2)
    /// "error shutdown not done after 2.5 s → emergency"
    public static let errorShutdownEscalation = Duration.ms(2500)
    /// "after charger sends CST | current ≤ 5 A within 100 ms"
    public static let cstCurrentDownWithin = Duration.ms(100)
    /// "after car sends BST | current ≤ 5 A within 10 s"
    public static let bstCurrentDownWithin = Duration.s(10)
    /// "car communication timeout while charging | open K1/K2 (and aux) within 10 s"
    public static let commTimeoutOpenWithin = Duration.s(10)
    /// "... 3 timeouts in a row end the session" (same row). "In a row": no clean minute of charging
    /// between them (design choice; the row does not say).
    public static let commTimeoutsEndingSession = 3
    /// Aux supply (K3/K4) held off before a reconnection so the BMS restarts (design choice).
    public static let reconnectAuxOff = Duration.s(1)
    public static let commTimeoutCleanCharging = Duration.s(60)
    /// "AC mains lost | output below 60 V within 1 s"
    public static let mainsLostDischargeWithin = Duration.s(1)

    /// IEC 61851-23 Table 103 (via standards.md "Fault reactions"): emergency over-voltage limit
    /// for a charger of the given rated output voltage.
    @inlinable public static func table103Limit(rated: Volts) -> Volts {
        let r = rated.value
        if r <= 500 { return Volts(550) }
        if r <= 750 { return Volts(825) }
        if r <= 850 { return Volts(935) }
        if r <= 1000 { return Volts(1100) }
        return Volts(1375)
    }

    // MARK: GB/T 27930-2015 — standards.md "charger ⇄ car messages"
    public static let periodCHM = Duration.ms(250)
    public static let periodCRM = Duration.ms(250)
    public static let periodCML = Duration.ms(250)
    public static let periodCRO = Duration.ms(250)
    public static let periodCCS = Duration.ms(50)
    public static let periodCST = Duration.ms(10)
    public static let periodCSD = Duration.ms(250)
    public static let periodBHM = Duration.ms(250)
    public static let periodBRM = Duration.ms(250)
    public static let periodBCP = Duration.ms(500)
    public static let periodBRO = Duration.ms(250)
    public static let periodBCL = Duration.ms(50)
    public static let periodBCS = Duration.ms(250)
    public static let periodBSM = Duration.ms(250)
    public static let periodBST = Duration.ms(10)
    public static let periodBSD = Duration.ms(250)
    /// "Default timeout 5 s"
    public static let defaultMessageTimeout = Duration.s(5)
    /// "BRO / CRO ... wait up to 60 s"
    public static let vehicleReadyTimeout = Duration.s(60)
    /// "BCL (car) | 50 ms | ... timeout 1 s"
    public static let bclTimeout = Duration.s(1)
    /// "BCS ... (timeout 5 s)"
    public static let bcsTimeout = Duration.s(5)
    /// "BSD / CSD ... wait up to 10 s"
    public static let statisticsTimeout = Duration.s(10)
    /// "handshake retried 3 times"
    public static let handshakeAttempts = 3
    /// "a pause over 10 min ends the session"
    public static let maxPause = Duration.s(600)
    /// "Current fields: 0.1 A/bit, offset −400 A (so the 2015 protocol tops out at 400 A)". We model the
    /// demand, not the wire limit, above 400 A (same row).
    public static let gbt2015WireCurrentLimit = Amps(400)
}
