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
    public static let connectingAbandon = TimeSpan.s(5)
    /// Debounce before CC1 out-of-band is believed: a design choice, well inside the 50 ms budget of
    /// "switch S opens (latch pressed) | current ≤ 5 A within 50 ms" (Fault reactions table).
    public static let cc1FaultDebounce = TimeSpan.ms(3)
    /// Confirmation time of the connected state before locking (design choice: plug bounce).
    public static let cc1ConnectDebounce = TimeSpan.ms(100)
    /// "The auxiliary supply to the car (K3/K4) is 12 V ± 0.6 V" (Connection confirm), measured at the gun
    /// side of K3/K4 where the board has the channel ([[analog]] aux-supply).
    public static let auxSupplyNominal = Volts(12)
    public static let auxSupplyTolerance = Volts(0.6)
    /// Design choices (standards.md "Connection confirm"): the supply is judged once K3/K4 have been
    /// closed this long (the car's BMS inrush and the contactor's bounce), and out of its band this long
    /// before it is believed (a 1 kHz sample of a 12 V rail under a 10 A load step).
    public static let auxSupplySettle = TimeSpan.ms(200)
    public static let auxSupplyFaultDebounce = TimeSpan.ms(100)
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
    public static let dischargeTime = TimeSpan.s(1)
    /// "self-test result within 30 s"
    public static let imdSelfTestTimeout = TimeSpan.s(30)
    /// "the whole cable check under 25 s"
    public static let cableCheckTimeout = TimeSpan.s(25)
    /// "Check times out at 15 s of no answer (EN+ practice)."
    public static let imdNoAnswerTimeout = TimeSpan.s(15)
    /// "During cable check limit current to 2 A."
    public static let cableCheckCurrentLimit = Amps(2)
    /// Hold at test voltage before the IMD reading is trusted (design choice; the IMD's own
    /// asymmetric-fault response is ≤ 1 s per "Typical IMD" in the same section).
    public static let insulationSettleTime = TimeSpan.ms(1500)

    // MARK: Residual current / earth — standards.md "Residual current / earth"
    /// "Self-test the detector before each session where the device supports it." The time allowed for
    /// the device to report is not in the standards we read (unconfirmed): 5 s, a vendor figure
    /// (RDC-DD self-tests take about 100–500 ms).
    public static let groundDetectorSelfTestTimeout = TimeSpan.s(5)

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
    public static let uncommandedCurrentPersistence = TimeSpan.ms(100)
    /// "Precharge times out at 60 s."
    public static let prechargeTimeout = TimeSpan.s(60)
    /// Window after K1/K2 close in which current beyond the command counts as inrush (design choice:
    /// ten module time constants of the fastest module).
    public static let closingWindow = TimeSpan.ms(100)
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
    public static let cc1CurrentDownWithin = TimeSpan.ms(50)
    public static let cc1OpenWithin = TimeSpan.ms(100)
    /// "other fault preventing charge | CST and K1/K2 open within 100 ms"
    public static let errorShutdownOpenWithin = TimeSpan.ms(100)
    /// "protective earth continuity lost | cut power within 100 ms"
    public static let peLossCutWithin = TimeSpan.ms(100)
    /// "output above car's maximum voltage | stop, open K1–K4 within 1 s"
    public static let vehicleMaxOvOpenWithin = TimeSpan.s(1)
    /// "over-voltage above IEC Table 103 limit for 9 ms"
    public static let table103Persistence = TimeSpan.ms(9)
    /// "output above negotiated maximum > 400 ms | error shutdown within 50 ms"
    public static let negotiatedOvPersistence = TimeSpan.ms(400)
    /// Filters for sensor spikes before an over-voltage against the car's maximum, or an over-current
    /// against the gun's rating, is believed (design choices, far inside the 1 s and "emergency"
    /// budgets of their rows).
    public static let vehicleMaxOvFilter = TimeSpan.ms(10)
    public static let overCurrentFilter = TimeSpan.ms(2)
    /// "error shutdown not done after 2.5 s → emergency"
    public static let errorShutdownEscalation = TimeSpan.ms(2500)
    /// "after charger sends CST | current ≤ 5 A within 100 ms"
    public static let cstCurrentDownWithin = TimeSpan.ms(100)
    /// "after car sends BST | current ≤ 5 A within 10 s"
    public static let bstCurrentDownWithin = TimeSpan.s(10)
    /// "car communication timeout while charging | open K1/K2 (and aux) within 10 s"
    public static let commTimeoutOpenWithin = TimeSpan.s(10)
    /// "... 3 timeouts in a row end the session" (same row). "In a row": no clean minute of charging
    /// between them (design choice; the row does not say).
    public static let commTimeoutsEndingSession = 3
    /// Aux supply (K3/K4) held off before a reconnection so the BMS restarts (design choice).
    public static let reconnectAuxOff = TimeSpan.s(1)
    public static let commTimeoutCleanCharging = TimeSpan.s(60)
    /// "AC mains lost | output below 60 V within 1 s"
    public static let mainsLostDischargeWithin = TimeSpan.s(1)
    /// Anti-islanding (docs/standards.md "V2G"): a source feeding the grid stops within 2 s of the grid's
    /// loss (GB/T 33593-2017 anti-islanding protection; IEEE 1547-2018 §8.1.2). Export stops with the
    /// mains-lost emergency in the cycle it is seen; the simulator holds every run to this bound.
    public static let antiIslandingWithin = TimeSpan.s(2)

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
    public static let periodCHM = TimeSpan.ms(250)
    public static let periodCRM = TimeSpan.ms(250)
    public static let periodCML = TimeSpan.ms(250)
    public static let periodCRO = TimeSpan.ms(250)
    public static let periodCCS = TimeSpan.ms(50)
    public static let periodCST = TimeSpan.ms(10)
    public static let periodCSD = TimeSpan.ms(250)
    public static let periodBHM = TimeSpan.ms(250)
    public static let periodBRM = TimeSpan.ms(250)
    public static let periodBCP = TimeSpan.ms(500)
    public static let periodBRO = TimeSpan.ms(250)
    public static let periodBCL = TimeSpan.ms(50)
    public static let periodBCS = TimeSpan.ms(250)
    public static let periodBSM = TimeSpan.ms(250)
    public static let periodBST = TimeSpan.ms(10)
    public static let periodBSD = TimeSpan.ms(250)
    /// "Default timeout 5 s"
    public static let defaultMessageTimeout = TimeSpan.s(5)
    /// "BRO / CRO ... wait up to 60 s"
    public static let vehicleReadyTimeout = TimeSpan.s(60)
    /// "BCL (car) | 50 ms | ... timeout 1 s"
    public static let bclTimeout = TimeSpan.s(1)
    /// "BCS ... (timeout 5 s)"
    public static let bcsTimeout = TimeSpan.s(5)
    /// The car's discharge offer (BDP, our own message, docs/standards.md "V2G"): sent every 250 ms like
    /// BCS; older than 1 s (BCL's timeout) it counts as withdrawn and no discharge is commanded.
    public static let periodBDP = TimeSpan.ms(250)
    public static let v2gOfferTimeout = TimeSpan.s(1)
    /// "BSD / CSD ... wait up to 10 s"
    public static let statisticsTimeout = TimeSpan.s(10)
    /// How long CSD stays in the broadcast at the least (the end stage waits for it even when the car's BSD
    /// came first): two of its 250 ms periods, so that the car hears it with the link's thread a period
    /// late. Our choice: docs/standards.md "When each charger message starts and stops".
    public static let csdHold = TimeSpan.ms(500)
    /// How long a dead, hung or stopped controller's contactors may stay closed: the fastest disconnect
    /// the standards ask of a working one (CC1 lost: K1/K2 open within 100 ms). Our bound, held by the
    /// board's charge-pumped coil supply: docs/standards.md "A controller that dies".
    public static let deadControllerDisconnect = TimeSpan.ms(100)
    /// "handshake retried 3 times"
    public static let handshakeAttempts = 3
    /// Plug and charge by VIN (docs/standards.md "Plug and charge"): recognition is held (CRM 0x00)
    /// for the VIN's answer at most this long from the start of recognition: the car's own 5 s timeout for
    /// CRM 0xAA (the default timeout) less a 1 s margin, so the car never times out first. A project choice.
    public static let vinAnswerWait = TimeSpan.s(4)
    /// "a pause over 10 min ends the session"
    public static let maxPause = TimeSpan.s(600)
    /// "Current fields: 0.1 A/bit, offset −400 A (so the 2015 protocol tops out at 400 A)". We model the
    /// demand, not the wire limit, above 400 A (same row).
    public static let gbt2015WireCurrentLimit = Amps(400)
}
